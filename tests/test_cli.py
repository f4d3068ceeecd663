"""The ``spec-decode`` command and the streaming decoder behind it.

- Argument errors name the argument, the value and what is allowed (no model needed).
- Streaming (one jitted round at a time) returns exactly the tokens of the while loops
  (tiny random models whose logits depend on the cache; sampled, ragged prompts, EOS).
- On SmolLM2, through the CLI in-process (the session fixture's arrays are reused):
  ``generate --json --num-samples``: fields, stats, and samples independent of batching;
  greedy speculative == greedy autoregressive for several prompts and gamma, streamed text
  included; the first-token distribution at temperature 1 equals the target's softmax.

The draft is the shipped neural draft when its asset exists, else prompt lookup.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_decode.app import GenerateOptions, registry
from spec_decode.cli import main
from spec_decode.drafts import (
    SparseBigramDraft,
    UnigramDraft,
    ngram_params_from_tokens,
    sparse_bigram_params_from_tokens,
)

sys.path.insert(0, str(Path(__file__).parent))
from stats import SIGNIFICANCE, detectable_tv, goodness_of_fit  # noqa: E402


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``spec-decode *argv`` run in this process."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["generate"], "one of the arguments --prompt --prompt-file is required"),
        (["generate", "--prompt", "x", "--draft", "nope"], "invalid choice: 'nope'"),
        (["generate", "--prompt", "x", "--gamma", "0"], "gamma='0' is not allowed: it must be"),
        (["generate", "--prompt", "x", "--gamma", "two"], "gamma='two' is not allowed"),
        (["generate", "--prompt", "x", "--temperature", "-1"], "temperature='-1' is not allowed"),
        (["generate", "--prompt", "x", "--top-p", "0"], "top_p='0' is not allowed: it must be in"),
        (["generate", "--prompt", "x", "--top-k", "-2"], "top_k='-2' is not allowed"),
        (["generate", "--prompt", "x", "--max-new-tokens", "0"], "max_new_tokens='0' is not"),
        (["generate", "--prompt", "x", "--num-samples", "0"], "num_samples='0' is not allowed"),
        (["generate", "--prompt", "x", "--mode", "fast"], "invalid choice: 'fast'"),
        (["generate", "--prompt", "x", "--prompt-file", "f"], "not allowed with argument"),
        (["demo", "--gamma", "-1"], "gamma='-1' is not allowed"),
        (["generate", "--prompt-file", "/no/such.jsonl"], "prompt_file='/no/such.jsonl' cannot"),
    ],
)
def test_argument_errors(argv, expected, capsys):
    code, out, err = run(argv, capsys)
    assert code == 2
    assert expected in err, err
    assert out == ""


@pytest.mark.parametrize(
    "content, expected",
    [
        ('{"prompt": "a"}\nnot json\n', "line 2 is not valid JSON"),
        ('{"text": "a"}\n', "line 1 is not allowed: each line must be an object with a string"),
        ("\n\n", "holds no prompts"),
    ],
)
def test_prompt_file_errors(content, expected, tmp_path, capsys):
    path = tmp_path / "prompts.jsonl"
    path.write_text(content)
    code, _, err = run(["generate", "--prompt-file", str(path)], capsys)
    assert code == 2 and expected in err, err


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("gamma", 0, "gamma=0 is not allowed: it must be an integer >= 1"),
        ("draft", "trigram", "draft='trigram' is not allowed: it must be one of"),
        ("mode", "greedy", "mode='greedy' is not allowed"),
        ("num_samples", 0, "num_samples=0 is not allowed"),
    ],
)
def test_options_errors(field, value, expected):
    with pytest.raises(ValueError, match=expected):
        GenerateOptions(**{field: value})


# --- SmolLM2 through the CLI ---------------------------------------------------------------------


def _json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_missing_ngram_asset_is_a_clear_error(smollm2, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(registry, "NGRAM_ASSETS", tmp_path)
    registry._load_draft_cached.cache_clear()
    code, _, err = run(["generate", "--prompt", "x", "--draft", "bigram"], capsys)
    registry._load_draft_cached.cache_clear()
    assert code == 2
    assert "draft='bigram' is not available" in err and "--draft prompt-lookup" in err, err


def test_ngram_assets_load(smollm2, monkeypatch, tmp_path):
    """The asset format the registry documents: np.savez of the draft params."""
    model, _, _ = smollm2
    corpus = [[1, 2, 3, 2, 3, 4], [5, 2, 3]]
    vocab = model.vocab_size
    np.savez(tmp_path / "unigram.npz", **ngram_params_from_tokens(corpus, vocab, order=1))
    np.savez(tmp_path / "bigram.npz", **sparse_bigram_params_from_tokens(corpus, vocab, top_m=4))
    monkeypatch.setattr(registry, "NGRAM_ASSETS", tmp_path)
    registry._load_draft_cached.cache_clear()
    target = registry.load_target("smollm2-135m")
    try:
        unigram, unigram_params = registry.load_draft("unigram", target)
        bigram, bigram_params = registry.load_draft("bigram", target)
    finally:
        registry._load_draft_cached.cache_clear()
    assert isinstance(unigram, UnigramDraft) and unigram_params["log_probs"].shape == (vocab,)
    assert isinstance(bigram, SparseBigramDraft) and bigram.top_m == 4
    logits, _ = bigram.extend(bigram_params, jnp.array([[2]]), bigram.init_cache(None, 1, 4))
    assert int(jnp.argmax(logits[0, 0])) == 3


def test_neural_draft_is_the_shipped_asset(smollm2):
    """``smollm2-draft`` is the shipped distilled draft, sharing the target's embedding table."""
    from spec_decode.drafts.neural import SharedEmbeddingDraft

    model, params, _ = smollm2
    draft, draft_params = registry.load_draft("smollm2-draft", registry.load_target("smollm2-135m"))
    assert isinstance(draft, SharedEmbeddingDraft) and draft.vocab_size == model.vocab_size
    assert draft_params["body"]["embed"]["embedding"] is params["embed"]["embedding"]


def test_generate_json_num_samples(smollm2, smollm2_draft_name, capsys):
    _, _, tokenizer = smollm2
    common = ["generate", "--prompt", "Name a color.", "--json", "--draft", smollm2_draft_name,
              "--temperature", "1", "--seed", "7", "--max-new-tokens", "6", "--gamma", "3",
              "--batch-size", "2"]  # fmt: skip
    code, out, _ = run(common + ["--num-samples", "3"], capsys)
    assert code == 0
    samples = _json_lines(out)
    assert [s["sample"] for s in samples] == [0, 1, 2]
    for sample in samples:
        assert set(sample) == {"prompt", "sample", "tokens", "text", "stats"}
        assert sample["prompt"] == "Name a color."
        assert 1 <= len(sample["tokens"]) <= 6
        assert sample["text"] == tokenizer.decode(sample["tokens"], skip_special_tokens=True)
        stats = sample["stats"]
        assert {"target_calls", "draft_calls", "accepted_tokens", "alpha"} <= set(stats)
        assert sum(stats["acceptance_histogram"]) == stats["rounds"] == stats["target_calls"]
        assert stats["draft_calls"] == 3 * stats["target_calls"]
        # Each round emits its accepted drafts plus one token (the last round may be cut).
        assert len(sample["tokens"]) <= stats["accepted_tokens"] + stats["target_calls"]
        # alpha = accepted / examined; every round examines until its first rejection.
        examined = stats["accepted_tokens"] + stats["target_calls"]
        assert stats["accepted_tokens"] / examined <= stats["alpha"] or stats["alpha"] == 0
        assert 0 <= stats["alpha"] <= 1
    # A sample depends on its seed, prompt and index only: not on how many were asked for.
    code, out, _ = run(common + ["--num-samples", "2"], capsys)
    assert code == 0 and _json_lines(out) == samples[:2]


CHAT_PROMPTS = [
    "Write a Python function that reverses a string.",
    "What is the capital of Italy?",
    "Repeat after me: the quick brown fox jumps over the lazy dog.",
]


def test_shipped_eagle_draft_decodes_greedy_equal_to_the_target(smollm2, capsys):
    """``smollm2-eagle`` loads the shipped block by name and stays exact (float32, greedy)."""
    from spec_decode.distill import eagle_checkpoint
    from spec_decode.drafts.eagle import EagleDraft

    assert (eagle_checkpoint.ASSET_DIR / "weights.npz").stat().st_size <= 16 * 2**20
    draft, _ = registry.load_draft("smollm2-eagle", registry.load_target("smollm2-135m"))
    assert isinstance(draft, EagleDraft) and draft.vocab_size == smollm2[0].vocab_size
    common = ["generate", "--prompt", CHAT_PROMPTS[0], "--json", "--temperature", "0",
              "--max-new-tokens", "12"]  # fmt: skip
    code, out, _ = run(common + ["--mode", "autoregressive"], capsys)
    assert code == 0
    plain = _json_lines(out)
    code, out, _ = run(common + ["--draft", "smollm2-eagle", "--gamma", "3"], capsys)
    assert code == 0
    eagle = _json_lines(out)
    assert [s["tokens"] for s in eagle] == [s["tokens"] for s in plain]
    assert eagle[0]["stats"]["draft_calls"] > 0


def test_greedy_speculative_equals_autoregressive(smollm2, smollm2_draft_name, tmp_path, capsys):
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in CHAT_PROMPTS))
    common = ["generate", "--prompt-file", str(path), "--json", "--temperature", "0",
              "--max-new-tokens", "16", "--batch-size", "3"]  # fmt: skip
    code, out, _ = run(common + ["--mode", "autoregressive"], capsys)
    assert code == 0
    plain = _json_lines(out)
    assert all(s["stats"]["alpha"] is None and s["stats"]["draft_calls"] == 0 for s in plain)
    for gamma in ("1", "3"):
        code, out, _ = run(common + ["--draft", smollm2_draft_name, "--gamma", gamma], capsys)
        assert code == 0
        speculative = _json_lines(out)
        assert [s["tokens"] for s in speculative] == [s["tokens"] for s in plain], gamma
        assert all(
            s["stats"]["target_calls"] <= p["stats"]["target_calls"]
            for s, p in zip(speculative, plain, strict=True)
        )
    # Without --json the text is streamed round by round: the same text.
    code, out, err = run(
        ["generate", "--prompt", CHAT_PROMPTS[0], "--temperature", "0", "--max-new-tokens", "16",
         "--draft", smollm2_draft_name, "--gamma", "3"], capsys,
    )  # fmt: skip
    assert code == 0
    assert out == plain[0]["text"] + "\n"
    assert "alpha" in err


@pytest.mark.slow
def test_first_token_distribution_is_the_targets(smollm2, smollm2_draft_name, capsys):
    """2000 samples of the first token after "Today" (no chat template), temperature 1.

    Tokens with expected count >= 5 are cells of their own, the rest one cell (28 + 1 cells).
    With significance 1e-3 the chi-square test detects a total-variation error of 0.091 or more
    with probability 0.99 (``tests/stats.py``); the whole pipeline (CLI, batching into rows with
    their own keys, speculative rejection) is under test.
    """
    model, params, tokenizer = smollm2
    num_samples = 2000
    code, out, _ = run(
        ["generate", "--prompt", "Today", "--no-chat", "--json", "--temperature", "1",
         "--max-new-tokens", "1", "--num-samples", str(num_samples), "--batch-size", "1000",
         "--gamma", "1", "--draft", smollm2_draft_name, "--seed", "11"], capsys,
    )  # fmt: skip
    assert code == 0
    first = np.array([s["tokens"][0] for s in _json_lines(out)])
    ids = jnp.asarray([tokenizer.encode("Today")], jnp.int32)
    logits, _ = model.extend(params, ids, model.init_cache(params, 1, ids.shape[1]))
    probs = np.asarray(jax.nn.softmax(logits[0, -1].astype(jnp.float32)), np.float64)
    own_cell = probs * num_samples >= 5
    cells = np.flatnonzero(own_cell)
    counts = np.bincount(first, minlength=probs.size)
    observed = np.append(counts[cells], counts[~own_cell].sum())
    expected = np.append(probs[cells], probs[~own_cell].sum())
    assert len(first) == num_samples
    assert detectable_tv(num_samples, len(cells)) < 0.1
    assert goodness_of_fit(observed, expected) > SIGNIFICANCE
