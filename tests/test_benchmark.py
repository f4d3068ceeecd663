"""The benchmark's smoke run: every record field, the theory columns, the files."""

import importlib.util
import json
import math
import pathlib

import pytest

from spec_decode.core import theory

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "benchmark.py"
FIELDS = {
    "target", "draft", "batch", "gamma", "temperature", "tokens_per_s_autoregressive",
    "tokens_per_s_speculative", "speedup", "alpha_empirical", "alpha_analytic",
    "tokens_per_target_call", "tokens_per_target_call_theory", "c", "predicted_speedup",
    "measured_over_predicted",
}  # fmt: skip


def _script():
    spec = importlib.util.spec_from_file_location("benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_draft_names_are_the_registry_s_and_the_old_ones_still_work(capsys):
    script = _script()
    args = script.parse_args(["--target", "smollm2", "--drafts", "neural,bigram,prompt-lookup"])
    assert args.target == "smollm2-135m"
    assert args.drafts == ["smollm2-draft", "bigram", "prompt-lookup"]
    with pytest.raises(SystemExit):
        script.parse_args(["--drafts", "smollm2-draft,nope"])
    assert "'nope' is not allowed" in capsys.readouterr().err


def test_smoke_benchmark(tmp_path):
    module = _script()
    assert module.main(["--smoke", "--out", str(tmp_path)]) == 0
    records = json.loads((tmp_path / "results.json").read_text())
    assert len(records) == 4
    for r in records:
        assert FIELDS <= set(r)
        assert all(math.isfinite(r[k]) for k in FIELDS - {"target", "draft"})
        assert 0 <= r["alpha_empirical"] <= 1 and 0 <= r["alpha_analytic"] <= 1
        assert r["predicted_speedup"] == theory.expected_speedup(
            r["alpha_empirical"], r["gamma"], r["c"]
        )
        ratio = r["tokens_per_s_speculative"] / r["tokens_per_s_autoregressive"]
        assert math.isclose(r["speedup"], ratio, rel_tol=1e-9)
        assert 1 <= r["tokens_per_target_call"] <= r["gamma"] + 1
    for name in ("results.md", "best_gamma.json", "speedup_vs_gamma.png", "speedup_vs_batch.png"):
        assert (tmp_path / name).stat().st_size > 0


def test_analytic_alpha_averages_only_positions_that_predicted_generated_tokens():
    """Packing puts each generated run right after its own prompt; the mask marks exactly the
    positions that predicted a generated token, and the average is over those alone."""
    import jax
    import numpy as np

    from spec_decode import SamplingConfig
    from spec_decode.bench import analytic_alpha, packed_continuations
    from spec_decode.models import LlamaConfig, LlamaLM

    prompts = np.array([[5, 6, 7, 0], [8, 9, 0, 0]], np.int32)
    generated = np.array([[1, 2, 0], [3, 0, 0]], np.int32)
    sequences, mask = packed_continuations(prompts, [3, 2], generated, [2, 1])
    np.testing.assert_array_equal(sequences, [[5, 6, 7, 1, 2, 0, 0], [8, 9, 3, 0, 0, 0, 0]])
    np.testing.assert_array_equal(mask[0], [0, 0, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(mask[1], [0, 1, 0, 0, 0, 0, 0])

    def model(seed):
        config = LlamaConfig(vocab_size=16, num_layers=1, emb_dim=16, num_heads=2,
                             num_kv_heads=1, head_dim=8, mlp_dim=32, max_length=16)  # fmt: skip
        lm = LlamaLM(config)
        return lm, lm.init(jax.random.key(seed))

    (target, tp), (draft, dp) = model(0), model(1)
    sampling = SamplingConfig(temperature=1.0)
    every = analytic_alpha(target, tp, draft, dp, sequences, sampling)
    masked = analytic_alpha(target, tp, draft, dp, sequences, sampling, mask)
    only_masked = analytic_alpha(target, tp, draft, dp, sequences, sampling, ~mask)
    n = mask.sum()
    assert np.isclose(every, (n * masked + (mask.size - n) * only_masked) / mask.size)
    assert not np.isclose(masked, every)
    assert analytic_alpha(target, tp, target, tp, sequences, sampling, mask) > 1 - 1e-5


def test_timed_decoders_alternate_so_a_slow_spell_hits_both():
    from spec_decode.bench import time_calls

    calls = []
    timed = time_calls({"a": lambda: calls.append("a") or 1, "b": lambda: calls.append("b") or 2},
                       repeats=3)  # fmt: skip
    assert calls == ["a", "b"] * 4  # one warm-up each, then a, b per repeat
    assert timed["a"][1] == 1 and timed["b"][1] == 2 and timed["a"][0] >= 0
    calls.clear()
    time_calls({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 1, warmup=2)
    assert calls == ["a", "b"] * 3
    with pytest.raises(ValueError, match="warmup=0"):
        time_calls({"a": lambda: None}, 1, warmup=0)
