"""The benchmark's smoke run: every record field, the theory columns, the files."""

import importlib.util
import json
import math
import pathlib

from spec_decode import theory

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "benchmark.py"
FIELDS = {
    "target", "draft", "batch", "gamma", "temperature", "tokens_per_s_autoregressive",
    "tokens_per_s_speculative", "speedup", "alpha_empirical", "alpha_analytic",
    "tokens_per_target_call", "tokens_per_target_call_theory", "c", "predicted_speedup",
    "measured_over_predicted",
}  # fmt: skip


def test_smoke_benchmark(tmp_path):
    spec = importlib.util.spec_from_file_location("benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
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
