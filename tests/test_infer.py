"""scripts/infer.py end to end: shipped gin configs with tiny overrides, T5X checkpoints written
here, a SentencePiece vocabulary trained here (no downloads), predictions as JSONL.

The run is greedy, so each prediction must be exactly the target's own greedy decode (computed
here with ``autoregressive_decode``) whatever the draft proposed.
"""

from __future__ import annotations

import functools
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from test_t5x_compat import noisy_copy, random_params, tiny_t5

from spec_decode import SamplingConfig, autoregressive_decode
from spec_decode.core.stats import alpha
from spec_decode.formats.t5x import save_t5x_checkpoint_legacy, save_t5x_checkpoint_orbax
from spec_decode.models.t5 import make_t5_inputs
from spec_decode.t5x_compat import SentencePieceVocabulary
from spec_decode.t5x_compat.inference import infer, read_input_file

REPO = Path(__file__).resolve().parents[1]
VOCAB_SIZE = 64  # model rows; the SentencePiece model has 40 pieces (T5 pads its 32100 too)
LENGTHS = {"inputs": 16, "targets": 12}
WORDS = (
    "the a small large model draft target token fast slow exact sample accept reject verify "
    "decode speed cache layer head"
).split()
TEXTS = [
    "the fast draft model",
    "verify a token",
    "exact sample of the large target with a small cache",
    "slow",
    "accept reject decode speed layer head",
]
TINY_GIN = """
# Tiny models for tests: parsed after runs/infer_speculative.gin and a pair file.
from __gin__ import dynamic_registration

from spec_decode import t5

include 't5_1_1/base.gin'

VOCAB_SIZE = {vocab_size}
ACTIVATION_DTYPE = 'float32'
TINY = @tiny/t5.T5Config()
tiny/t5.T5Config:
  emb_dim = 16
  num_heads = 2
  head_dim = 8
  mlp_dim = 32
  num_encoder_layers = 1
  num_decoder_layers = 1
TARGET_CONFIG = %TINY
DRAFT_CONFIG = %TINY
"""


def train_vocabulary(directory: Path) -> Path:
    """A 40-piece SentencePiece model (T5's ids: pad 0, EOS 1, UNK 2) from generated text."""
    import sentencepiece

    rng = random.Random(0)
    lines = [" ".join(rng.choices(WORDS, k=rng.randint(3, 9))) for _ in range(400)]
    prefix = directory / "vocab"
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_prefix=str(prefix), vocab_size=40,
        model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1, character_coverage=1.0,
        minloglevel=2,
    )  # fmt: skip
    return prefix.with_suffix(".model")


@functools.cache
def tiny_models():
    """The tiny target (its config is TINY_GIN's), its params and a noisy copy as the draft."""
    model = tiny_t5(VOCAB_SIZE)
    params = random_params(model, seed=0)
    return model, params, noisy_copy(params, seed=1, noise=0.05)


def write_run_files(directory: Path) -> dict[str, str]:
    """Vocabulary, both checkpoints (one per T5X format) and the tiny gin file; their paths."""
    _, params, draft_params = tiny_models()
    paths = {
        "vocab": str(train_vocabulary(directory)),
        "target": save_t5x_checkpoint_legacy(params, directory / "target" / "checkpoint_0"),
        "draft": save_t5x_checkpoint_orbax(draft_params, directory / "draft" / "checkpoint_0"),
        "gin": str(directory / "tiny.gin"),
    }
    Path(paths["gin"]).write_text(TINY_GIN.format(vocab_size=VOCAB_SIZE))
    return paths


def infer_command(paths: dict[str, str], output_dir: Path, *bindings: str) -> list[str]:
    return [
        sys.executable, str(REPO / "scripts" / "infer.py"),
        "--gin_file=runs/infer_speculative.gin", "--gin_file=pairs/xxl_small.gin",
        f"--gin_file={paths['gin']}",
        f"--gin.TARGET_CHECKPOINT_PATH='{paths['target']}'",
        f"--gin.DRAFT_CHECKPOINT_PATH='{paths['draft']}'",
        f"--gin.VOCABULARY_PATH='{paths['vocab']}'",
        f"--gin.INFER_OUTPUT_DIR='{output_dir}'",
        "--gin.BATCH_SIZE=2", "--gin.GAMMA=3", "--gin.RESTORE_DTYPE=None",
        f"--gin.TASK_FEATURE_LENGTHS={LENGTHS!r}",
        *bindings,
    ]  # fmt: skip


def run(command: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def greedy_reference(vocab_path: str, texts: list[str]) -> list[list[int]]:
    """The target's greedy decode of each text, EOS included, as infer.py tokenizes it."""
    model, params, _ = tiny_models()
    vocabulary = SentencePieceVocabulary(vocab_path)
    encoder = np.zeros((len(texts), LENGTHS["inputs"]), np.int32)
    for row, text in enumerate(texts):
        ids = vocabulary.encode(text)[: LENGTHS["inputs"] - 1] + [1]
        encoder[row, : len(ids)] = ids
    result = autoregressive_decode(
        model, make_t5_inputs(params, jnp.asarray(encoder)), jnp.zeros((len(texts), 1), jnp.int32),
        max_new_tokens=LENGTHS["targets"], sampling=SamplingConfig(temperature=0.0), eos_id=1,
    )  # fmt: skip
    tokens, lengths = np.asarray(result.tokens), np.asarray(result.lengths)
    return [tokens[row, : lengths[row]].tolist() for row in range(len(texts))]


def check_predictions(output_dir: Path, texts: list[str], vocab_path: str, vocabulary=None):
    """Predictions in input order, each the target's greedy decode, decoded by ``vocabulary``
    (default: ours on ``vocab_path``); returns the records."""
    lines = (output_dir / "predictions.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["index"] for r in records] == list(range(len(texts)))
    assert [r["inputs"] for r in records] == texts
    vocabulary = vocabulary or SentencePieceVocabulary(vocab_path)
    for record, expected in zip(records, greedy_reference(vocab_path, texts), strict=True):
        assert record["tokens"] == expected
        assert record["prediction"] == vocabulary.decode(expected)
        assert record["score"] == 0.0  # argmax: T5X's rescaled log-probs are 0
        stats = record["stats"]
        assert stats["generated_tokens"] == len(expected)
        assert 1 <= stats["target_calls"] <= len(expected)
        # The paper's alpha (accepted / examined drafts), as DecodeResult.summary computes it.
        assert stats["examined_drafts"] >= stats["accepted_tokens"]
        assert stats["alpha"] == alpha(stats["accepted_tokens"], stats["examined_drafts"])
    return records


def test_infer_script_end_to_end(tmp_path):
    paths = write_run_files(tmp_path)
    inputs = tmp_path / "inputs.jsonl"
    examples = [{"inputs": text} for text in TEXTS]
    examples[1]["targets"] = "a reference"
    inputs.write_text("".join(json.dumps(e) + "\n" for e in examples))
    output_dir = tmp_path / "out"

    done = run(infer_command(paths, output_dir, f"--gin.INPUT_FILE='{inputs}'"))
    assert done.returncode == 0, done.stderr[-3000:]
    records = check_predictions(output_dir, TEXTS, paths["vocab"])
    assert records[1]["targets"] == "a reference"
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary == json.loads((output_dir / "summary.json").read_text())
    assert summary["examples"] == 5 and summary["gamma"] == 3
    assert summary["generated_tokens"] == sum(len(r["tokens"]) for r in records)
    assert summary["accepted_tokens"] > 0  # the noisy draft is right often
    assert "5/5" in done.stderr  # the progress bar


def test_infer_script_reports_missing_settings(tmp_path):
    done = run(
        [sys.executable, str(REPO / "scripts" / "infer.py"),
         "--gin_file=runs/infer_speculative.gin", "--gin_file=pairs/xxl_small.gin"]
    )  # fmt: skip
    assert done.returncode == 2
    assert "TARGET_CHECKPOINT_PATH" in done.stderr and "REQUIRED" in done.stderr


def test_read_input_file(tmp_path):
    text = tmp_path / "inputs.txt"
    text.write_text("first line\n\nsecond line\n")
    assert read_input_file(str(text)) == [{"inputs": "first line"}, {"inputs": "second line"}]
    jsonl = tmp_path / "inputs.jsonl"
    jsonl.write_text('"plain"\n{"text": "t", "id": 3}\n')
    assert read_input_file(str(jsonl)) == [
        {"inputs": "plain"},
        {"text": "t", "id": 3, "inputs": "t"},
    ]
    jsonl.write_text('{"question": "no inputs key"}\n')
    with pytest.raises(ValueError, match="inputs.jsonl:1"):
        read_input_file(str(jsonl))
    with pytest.raises(FileNotFoundError, match="input_file"):
        read_input_file(str(tmp_path / "missing.txt"))


def test_infer_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="exactly one"):
        infer(None, "target", "draft", str(tmp_path))
    with pytest.raises(ValueError, match="exactly one"):
        infer(None, "target", "draft", str(tmp_path), input_file="x", mixture_or_task_name="y")
    with pytest.raises(ValueError, match="batch_size"):
        infer(None, "target", "draft", str(tmp_path), input_file="x", batch_size=0)
    with pytest.raises(ValueError, match="'targets'"):
        infer(None, "t", "d", str(tmp_path), input_file="x", task_feature_lengths={"targets": 0})
