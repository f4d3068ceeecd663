"""``infer``: the gin-configured inference run of ``scripts/infer.py`` (T5X's infer, speculative).

Reads inputs (a JSONL or text file, or a registered seqio task), decodes them in fixed-shape
batches with ``SpeculativeEncoderDecoderModel.predict_batch_with_aux`` (one compilation for the
run), and writes ``predictions.jsonl`` (one line per example, in input order) and
``summary.json`` to ``output_dir``. Each prediction line:

    {"index": 0, "inputs": "...", "prediction": "...", "tokens": [...], "score": -3.2,
     "stats": {"accepted_tokens": 9, "examined_drafts": 12, "target_calls": 4,
               "draft_calls": 28, "generated_tokens": 13, "alpha": 0.75}}

(plus "targets" when the input has them). ``alpha`` is the paper's, accepted / examined drafts
(``spec_decode.core.stats.alpha``), per example and in the summary.

With ``mesh`` (a ``('data', 'model')`` mesh from ``spec_decode.sharding.make_mesh``) the target's
parameters are split by their logical axes as T5X splits them, the draft's are replicated on
every device, and each batch's rows are split over 'data' (``batch_size`` should be a multiple
of the data axis size); the predictions are the same as on one device.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

import jax
import numpy as np

from spec_decode import sharding
from spec_decode.core.stats import alpha
from spec_decode.t5x_compat.decode_fn import STATISTICS
from spec_decode.t5x_compat.model import SpeculativeEncoderDecoderModel

PREDICTIONS = "predictions.jsonl"
SUMMARY = "summary.json"
_INPUT_KEYS = ("inputs", "input", "text")


def infer(
    model: SpeculativeEncoderDecoderModel,
    target_checkpoint_path: str,
    draft_checkpoint_path: str,
    output_dir: str,
    input_file: str | None = None,
    mixture_or_task_name: str | None = None,
    mixture_or_task_module: str | None = None,
    split: str = "validation",
    task_feature_lengths: Mapping[str, int] | None = None,
    batch_size: int = 8,
    restore_dtype: str | None = None,
    seed: int = 0,
    progress: bool = True,
    mesh: jax.sharding.Mesh | None = None,
    rules: sharding.Rules | None = None,
) -> dict[str, Any]:
    """Decode every input and write the predictions; returns the run's summary.

    Args:
      model: the speculative model (target module, draft, gamma, sampling in its decode_fn).
      target_checkpoint_path, draft_checkpoint_path: T5X checkpoints (either format).
      output_dir: where predictions.jsonl and summary.json go (created if needed).
      input_file: JSONL (an object per line with "inputs", "input" or "text", or a JSON
        string) or plain text (one input per line); tokenized with the model's vocabulary.
      mixture_or_task_name: a registered seqio task or mixture (instead of ``input_file``);
        ``mixture_or_task_module`` is imported first to register it.
      split: the seqio split.
      task_feature_lengths: {'inputs': S, 'targets': L}: encoder tokens per input (longer
        inputs are cut, keeping EOS) and decoded tokens per example.
      batch_size: rows per decoder call (the last batch is padded).
      restore_dtype: cast the checkpoints' parameters ('bfloat16', 'float32' or None).
      seed: batch i decodes with ``fold_in(PRNGKey(seed), i)``.
      progress: show a progress bar on stderr.
      mesh: decode on this device mesh (see the module docstring); None: one device.
      rules: logical axis rules for ``mesh`` (default ``sharding.STANDARD_RULES``).
    """
    from tqdm import tqdm

    lengths = {"inputs": 512, "targets": 128, **(task_feature_lengths or {})}
    sizes = {f"task_feature_lengths[{key!r}]": value for key, value in lengths.items()}
    for name, value in {"batch_size": batch_size, **sizes}.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} is not allowed: it must be an integer >= 1")
    if mesh is not None and not isinstance(mesh, jax.sharding.Mesh):
        raise ValueError(
            f"mesh={mesh!r} is not allowed: it must be None or a jax.sharding.Mesh "
            "(spec_decode.sharding.make_mesh builds one; gin: @sharding.make_mesh())"
        )
    rules = sharding.check_rules(rules)
    examples, vocabulary = _examples(
        model, input_file, mixture_or_task_name, mixture_or_task_module, split, lengths
    )
    params = _load_params(
        model, target_checkpoint_path, draft_checkpoint_path, restore_dtype, mesh, rules
    )
    decoder_params = {"eos_id": vocabulary.eos_id, **_mesh_decoder_params(model, mesh, rules)}
    os.makedirs(output_dir, exist_ok=True)
    predictions_path = os.path.join(output_dir, PREDICTIONS)
    totals = dict.fromkeys(STATISTICS, 0)
    start = time.perf_counter()
    count = 0
    with (
        open(predictions_path, "w") as out,
        tqdm(total=len(examples), desc="infer", unit="ex", disable=not progress) as bar,
    ):
        for index, chunk in enumerate(_chunks(examples, batch_size)):
            batch = _batch(chunk, batch_size, lengths, vocabulary.eos_id)
            if mesh is not None:
                batch = sharding.shard_batch(batch, mesh, rules)
            rng = jax.random.fold_in(jax.random.PRNGKey(seed), index)
            decodes, aux = model.predict_batch_with_aux(
                params, batch, rng=rng, decoder_params=decoder_params
            )
            decodes, aux = np.asarray(decodes), jax.tree.map(np.asarray, aux)
            for row, example in enumerate(chunk):
                stats = {name: int(aux[name][row]) for name in STATISTICS if name in aux}
                for name, value in stats.items():
                    totals[name] += value
                record = _record(example, decodes[row], float(aux["scores"][row]), stats)
                record["prediction"] = vocabulary.decode(record["tokens"])
                out.write(json.dumps({"index": count, **record}) + "\n")
                count += 1
            bar.update(len(chunk))
    summary = _summary(totals, count, model.gamma, time.perf_counter() - start)
    summary["predictions"] = predictions_path
    summary["mesh"] = None if mesh is None else dict(mesh.shape)
    with open(os.path.join(output_dir, SUMMARY), "w") as f:
        json.dump(summary, f, indent=1)
    return summary


def _load_params(model, target_path, draft_path, restore_dtype, mesh, rules):
    """{'target', 'draft'} params; on ``mesh``: the target split, the draft replicated.

    With a mesh the checkpoints are read into host memory first, so that no accelerator ever
    holds a whole target that is meant to be split.
    """
    if mesh is None:
        return model.load_params(target_path, draft_path, restore_dtype)
    try:
        host = jax.local_devices(backend="cpu")[0]
    except (RuntimeError, ValueError):  # no CPU backend (JAX_PLATFORMS without it)
        host = None  # the default device then
    with jax.default_device(host):
        params = model.load_params(target_path, draft_path, restore_dtype)
    target = model.target_model
    return {
        "target": sharding.shard_params(params["target"], target.logical_axes(), mesh, rules),
        "draft": sharding.replicate(params["draft"], mesh),
    }


def _mesh_decoder_params(model, mesh, rules) -> dict:
    """``mesh`` and ``rules`` for the decode_fn when it takes them (it then pins the caches'
    layout too); otherwise the decoders follow the layout of their sharded inputs."""
    keywords = getattr(model, "_decode_keywords", None) or set()
    if mesh is None or "mesh" not in keywords:
        return {}
    return {"mesh": mesh, "rules": rules}


def read_input_file(path: str) -> list[dict[str, Any]]:
    """Examples {'inputs': text, ...} from JSONL (.jsonl/.json) or text, one per line."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"input_file={path!r} does not exist")
    is_json = path.endswith((".jsonl", ".json"))
    examples = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            if not is_json:
                examples.append({"inputs": line.rstrip("\n")})
                continue
            value = json.loads(line)
            if isinstance(value, str):
                value = {"inputs": value}
            key = next((k for k in _INPUT_KEYS if isinstance(value, dict) and k in value), None)
            if key is None:
                raise ValueError(
                    f"{path}:{number} is not allowed: each JSONL line must be a string or an "
                    f"object with one of the keys {list(_INPUT_KEYS)}"
                )
            examples.append({**value, "inputs": value[key]})
    return examples


def _examples(model, input_file, task_name, task_module, split, lengths):
    """(examples with 'input_ids', the vocabulary that decodes predictions)."""
    if (input_file is None) == (task_name is None):
        raise ValueError(
            f"input_file={input_file!r} and mixture_or_task_name={task_name!r} are not allowed: "
            "set exactly one of them (gin: INPUT_FILE or MIXTURE_OR_TASK_NAME)"
        )
    if input_file is not None:
        vocabulary = model.output_vocabulary
        examples = read_input_file(input_file)
        for example in examples:
            ids = vocabulary.encode(str(example["inputs"]))[: lengths["inputs"] - 1]
            example["input_ids"] = ids + [vocabulary.eos_id]  # as seqio's append_eos_after_trim
        return examples, vocabulary
    if task_module:
        importlib.import_module(task_module)
    from spec_decode.t5x_compat import seqio_tasks

    return seqio_tasks.task_examples(task_name, split, lengths)


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _batch(chunk, batch_size: int, lengths: Mapping[str, int], eos_id: int) -> dict:
    """Fixed shapes [batch_size, S] and [batch_size, L]; padding rows hold a lone EOS."""
    encoder = np.zeros((batch_size, lengths["inputs"]), np.int32)
    encoder[:, 0] = eos_id
    for row, example in enumerate(chunk):
        ids = list(example["input_ids"])[: lengths["inputs"]]
        encoder[row, : len(ids)] = ids
    decoder = np.zeros((batch_size, lengths["targets"]), np.int32)
    return {"encoder_input_tokens": encoder, "decoder_input_tokens": decoder}


def _record(example, decoded: np.ndarray, score: float, stats: dict) -> dict:
    tokens = [int(t) for t in decoded]
    generated = stats.get("generated_tokens", len(tokens))
    record = {"inputs": example.get("inputs"), "tokens": tokens[:generated], "score": score}
    if example.get("targets") is not None:
        record["targets"] = example["targets"]
    if "accepted_tokens" in stats and "examined_drafts" in stats:
        stats = {**stats, "alpha": alpha(stats["accepted_tokens"], stats["examined_drafts"])}
    record["stats"] = stats
    return record


def _summary(totals: Mapping[str, int], count: int, gamma: int, seconds: float) -> dict:
    calls = totals["target_calls"]
    return {
        "examples": count,
        **totals,
        "gamma": gamma,
        "alpha": alpha(totals["accepted_tokens"], totals["examined_drafts"]),
        "tokens_per_target_call": totals["generated_tokens"] / calls if calls else None,
        "seconds": seconds,
    }
