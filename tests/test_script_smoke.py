"""The draft-distillation, peer-benchmark and prefill-throughput scripts run end to end on CPU
(--smoke).

Their real runs need an H200 and the SmolLM2 file (BENCHMARKS.md); these keep them from rotting.
"""

import importlib.util
import json
import pathlib

import numpy as np
import pytest
from conftest import unavailable

from spec_decode.distill import checkpoint, ngrams

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_distill_draft_trains_measures_and_saves_every_draft_and_reuses_its_data(tmp_path):
    script = _script("distill_draft")
    data = tmp_path / "train.npz"
    assert script.main(["--smoke", "--out", str(tmp_path / "a"), "--data", str(data)]) == 0
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    drafts = ["neural-1L-48", "neural-1L-64", "unigram", "bigram", "prompt-lookup"]
    for name in drafts:
        for temperature in ("T=0", "T=1"):
            assert 0 <= metrics[name][temperature]["alpha"] <= 1, (name, temperature)
        assert metrics[name]["c"] > 0
    for name in drafts[:2]:
        assert np.isfinite(metrics[name]["loss_last"])
        draft, _ = checkpoint.load_draft(_smoke_target_params(script), tmp_path / "a" / name)
        assert draft.body.num_layers == 1 and draft.body.param_dtype == "float32"
    # The n-gram tables are written in the layout the registry reads (tests/test_ngram_assets.py).
    vocab = script._smoke_target()[0].vocab_size
    for name in ngrams.TABLES:
        assert ngrams.load_ngram_table(tmp_path / "a" / "smollm2_ngrams", name, vocab)
    # The cached training set is read back, not regenerated: the same data trains the same way.
    assert script.main(["--smoke", "--out", str(tmp_path / "b"), "--data", str(data)]) == 0
    again = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert again["train_tokens"] == metrics["train_tokens"]
    assert again["train_prompts"] == metrics["train_prompts"]


def _smoke_target_params(script):
    _, params, _ = script._smoke_target()
    return params


def test_peer_benchmark_runs_transformers_and_ours_on_the_same_weights(tmp_path):
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as error:
        unavailable(f"the test extra is not installed: {error}")
    script = _script("benchmark_hf_peer")
    assert script.main(["--smoke", "--out", str(tmp_path)]) == 0
    table = json.loads((tmp_path / "peers.json").read_text())
    for name in ("transformers_dynamic_cache", "transformers_assisted", "ours_autoregressive",
                 "ours_speculative"):  # fmt: skip
        assert table[name]["tokens_per_s"] > 0, name
    # float32 on CPU: the same weights give the same greedy tokens on both sides.
    assert table["ours_autoregressive"]["identical_to_transformers_greedy"]
    assert table["ours_speculative"]["identical_to_our_greedy"]
    assert table["transformers_assisted"]["identical_to_transformers_greedy"]


def test_verify_cost_is_relative_to_one_token_and_c_covers_every_draft(tmp_path):
    out = tmp_path / "verify_cost.json"
    assert _script("verify_cost").main(["--smoke", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert list(result["verify_cost"]) == ["1", "2", "5"]
    assert result["verify_cost"]["1"] == 1.0
    assert all(v > 0 for v in result["verify_cost"].values())
    assert set(result["c"]) == {"tiny"} and result["c"]["tiny"] > 0


def test_long_prompt_smoke_runs_every_case_in_a_subprocess(tmp_path):
    out = tmp_path / "long_prompt.json"
    assert _script("long_prompt").main(["--smoke", "--json", str(out)]) == 0
    records = json.loads(out.read_text())
    cases = {(r["prompt"], r["decoder"]) for r in records}
    assert cases == {(p, d) for p in ("short", "long") for d in ("autoregressive", "speculative")}
    assert all(r["run_s"] > 0 and r["peak_gb"] > 0 and len(r["tokens"]) == 8 for r in records)


def test_prefill_throughput_measures_both_llama_paths_and_t5_and_keeps_to_its_budget(
    tmp_path, monkeypatch
):
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))  # its imports of _t5_bench, kernel_budget
    script = _script("prefill_throughput")
    out = tmp_path / "prefill.json"
    assert script.main(["--smoke", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    methods = {(r["model"], r["method"]) for r in result["records"]}
    assert methods == {
        ("llama", "chunked_prefill"), ("llama", "extend_with_logits"),
        ("t5", "encode_and_init_cache"),
    }  # fmt: skip
    for record in result["records"]:
        assert record["tokens_per_s"] > 0 and record["compile_s"] > 0, record
        assert record["seconds"] * record["tokens_per_s"] == pytest.approx(
            record["batch"] * record["tokens"], rel=1e-3
        )
        assert record["device"] == result["device"] and record["dtype"] == "bfloat16"
    # A spent budget starts nothing, and the file says what was not run.
    assert script.main(["--smoke", "--seconds", "1e-9", "--out", str(out)]) == 1
    (record,) = json.loads(out.read_text())["records"]
    assert record["error"].startswith("not started") and record["model"] == "llama"


def test_train_t5_trains_evaluates_saves_and_reloads_its_checkpoint(tmp_path):
    script = _script("train_t5")
    assert script.main(["--smoke", "--model-dir", str(tmp_path), "--no-progress"]) == 0
    summary = json.loads((tmp_path / "train_summary.json").read_text())
    assert summary["steps"] == 20 and summary["reloaded_checkpoint_matches"]
    (first, first_metrics), (_, last_metrics) = summary["eval"][0], summary["eval"][-1]
    assert first == 10 and last_metrics["loss"] < first_metrics["loss"]
    assert (tmp_path / "checkpoint_20" / "state" / "_METADATA").is_file()
