"""Time autoregressive vs speculative decoding of the same models in one process.

    python scripts/benchmark.py --smoke --out /tmp/bench            # tiny random models, CPU
    python scripts/benchmark.py --target smollm2-135m --drafts smollm2-draft,prompt-lookup \
        --gammas 1,2,3,4,5,6,7,8 --batches 1,4,16,64 --temperatures 0,1 --out results/
    python scripts/benchmark.py --mesh 2,4 ...     # 8 devices: rows over 2, target split over 4

Writes results.json (one record per configuration), best_gamma.json, results.md and PNG plots
(speedup against gamma with the Theorem 3.8 curve; speedup against batch size).

Targets and drafts are the registry's names (``spec_decode.app.registry``: ``--drafts bigram``
works too); the older ``--target smollm2`` and ``--drafts neural`` still mean the same.

``--mesh DATA,MODEL`` runs on a device mesh (``spec_decode.sharding``; data * model devices):
the target's params split by their logical axes, a neural draft replicated on every device,
each configuration's prompt rows split over 'data'; records then carry "mesh".
"""

from __future__ import annotations

import argparse
import itertools
import json
import pathlib
import sys

import jax
import jax.numpy as jnp
from tqdm import tqdm

from spec_decode import sharding
from spec_decode.app import registry
from spec_decode.bench import BenchConfig, measure_cost_ratio, measure_pair
from spec_decode.bench.report import write

# The names these flags took before they were the registry's.
OLD_NAMES = {"smollm2": "smollm2-135m", "neural": "smollm2-draft"}


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--target", default=registry.DEFAULT_TARGET, choices=[*registry.TARGETS, "tiny", "smollm2"]
    )
    parser.add_argument("--drafts", default="smollm2-draft,prompt-lookup")
    parser.add_argument("--gammas", type=_ints, default=_ints("1,2,3,4,5,6,7,8"))
    parser.add_argument("--batches", type=_ints, default=_ints("1,4,16,64"))
    parser.add_argument("--temperatures", type=_floats, default=_floats("0,1"))
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    parser.add_argument("--gguf", default=None, help="path of the SmolLM2 GGUF file")
    parser.add_argument(
        "--draft-dir", default=None, help="smollm2-draft's directory (default: shipped)"
    )
    parser.add_argument(
        "--extra", default="", help="extra gamma:batch pairs, e.g. 4:8,4:64 (beside the grid)"
    )
    parser.add_argument("--out", default="benchmark_results")
    parser.add_argument("--smoke", action="store_true", help="tiny models, a few configurations")
    parser.add_argument(
        "--mesh", default=None, help="DATA,MODEL: run on a device mesh of data * model devices"
    )
    args = parser.parse_args(argv)
    if args.mesh is not None:
        try:
            args.mesh = tuple(int(x) for x in args.mesh.split(","))
        except ValueError:
            args.mesh = ()
        if len(args.mesh) != 2 or min(args.mesh) < 1:
            parser.error("--mesh is not allowed as given: it must be DATA,MODEL (e.g. 2,4)")
    args.target = OLD_NAMES.get(args.target, args.target)
    args.drafts = [OLD_NAMES.get(name, name) for name in args.drafts.split(",") if name]
    if args.smoke:
        args.target, args.drafts = "tiny", ["tiny"]
        args.gammas, args.batches, args.temperatures = [1, 3], [1, 2], [1.0]
        args.max_new_tokens, args.repeats, args.dtype = 12, 1, "float32"
    for name in ("gammas", "batches"):
        if not getattr(args, name) or min(getattr(args, name)) < 1:
            parser.error(f"--{name}={getattr(args, name)} is not allowed: integers >= 1")
    allowed = ("tiny", "prompt-lookup") if args.target == "tiny" else registry.DRAFTS
    if not args.drafts:
        parser.error("--drafts is empty: name at least one draft")
    for name in args.drafts:
        if name not in allowed:
            parser.error(f"--drafts: {name!r} is not allowed: each must be one of {list(allowed)}")
    return args


def _tiny_models():
    from spec_decode.models import tiny_llama

    target, target_params = tiny_llama(2, 0, emb_dim=64, head_dim=8, max_length=256)
    draft, draft_params = tiny_llama(1, 1, emb_dim=32, head_dim=8, max_length=256)
    prompts = jax.random.randint(jax.random.key(2), (64, 8), 2, 64)
    return target, target_params, {"tiny": (draft, draft_params)}, prompts, None


def _smollm2_models(args, names):
    from spec_decode.distill.data import chat_prompts
    from spec_decode.distill.prompts import held_out_prompts

    drafts = {}
    for name in names:
        target, draft, draft_params = registry.load_pair(
            args.target, name, dtype=args.dtype, gguf=args.gguf, draft_dir=args.draft_dir
        )
        drafts[name] = (draft, draft_params)
    prompts, lengths = chat_prompts(target.tokenizer, held_out_prompts()[:64])
    prompts = (jnp.asarray(prompts), jnp.asarray(lengths))
    return target.model, target.params, drafts, prompts, None


def main(argv=None) -> int:
    args = parse_args(argv)
    names = args.drafts
    if args.target == "tiny":
        target, target_params, drafts, prompts, eos_id = _tiny_models()
        if "prompt-lookup" in names:
            from spec_decode.drafts import PromptLookupDraft

            drafts["prompt-lookup"] = (PromptLookupDraft(target.vocab_size), None)
        lengths = None
    else:
        target, target_params, drafts, (prompts, lengths), eos_id = _smollm2_models(args, names)
    mesh = None
    if args.mesh is not None:
        data, model = args.mesh
        mesh = sharding.make_mesh(data, model, devices=jax.devices()[: data * model])
        target_params = sharding.shard_params(target_params, target.logical_axes(), mesh)
        drafts = {name: sharding.place_draft(*pair, mesh) for name, pair in drafts.items()}
    records = []
    grid = list(itertools.product(names, args.batches, args.temperatures, args.gammas))
    for pair in filter(None, args.extra.split(",")):
        gamma, batch = (int(x) for x in pair.split(":"))
        grid += [(n, batch, t, gamma) for n in names for t in args.temperatures]
    costs: dict[tuple, float] = {}
    for name, batch, temperature, gamma in tqdm(grid, desc="configurations", file=sys.stderr):
        draft, draft_params = drafts[name]
        if (name, batch) not in costs:
            costs[(name, batch)] = measure_cost_ratio(
                target, target_params, draft, draft_params, batch
            )[0]
        rows = jnp.arange(batch) % prompts.shape[0]
        batch_prompts, batch_lengths = prompts[rows], None if lengths is None else lengths[rows]
        if mesh is not None:
            batch_prompts, batch_lengths = sharding.shard_batch(
                (batch_prompts, batch_lengths), mesh
            )
        record = measure_pair(
            target, target_params, draft, draft_params, batch_prompts, batch_lengths,
            BenchConfig(gamma, batch, temperature, args.max_new_tokens, args.repeats),
            cost_ratio=costs[(name, batch)], eos_id=eos_id, mesh=mesh,
        )  # fmt: skip
        record.update(target=args.target, draft=name)
        if mesh is not None:
            record["mesh"] = dict(mesh.shape)
        records.append(record)
        print(json.dumps(record), flush=True)
        write(records, pathlib.Path(args.out))  # after every record: a cut-off run keeps its data
    out = pathlib.Path(args.out)
    print((out / "results.md").read_text())
    print(json.dumps({"device": str(jax.devices()[0]), "records": len(records)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
