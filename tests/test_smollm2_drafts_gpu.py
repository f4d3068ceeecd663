"""scripts/smollm2_drafts_gpu.py --smoke: the GPU session's driver on tiny models, on a CPU.

One subprocess calls the driver twice: a first call whose budget cannot fit a training stage
exits 3 after the data stage, and a second call resumes there and finishes every stage
(neural draft, EAGLE draft, speedups; the data is not generated again). The results hold
each draft's alpha by category and a speedup record per temperature; greedy speculative tokens
equal the target's. Skips without apt's lists (the data stage reads them). Also:
``write_shards`` stops where told and the rerun goes on.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from spec_decode.distill import draft_data
from spec_decode.distill.requests import Request

ROOT = pathlib.Path(__file__).resolve().parents[1]
FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
TWO_CALLS = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("driver", sys.argv[1])
driver = importlib.util.module_from_spec(spec)
spec.loader.exec_module(driver)
first = driver.main(["--smoke", "--out", sys.argv[2], "--overhead-seconds", "1e9"])
second = driver.main(["--smoke", "--out", sys.argv[2]])
print(json.dumps([first, second]))
"""


def test_driver_smoke_stops_resumes_and_writes_results(tmp_path):
    if not list(pathlib.Path("/var/lib/apt/lists").glob("*_i18n_Translation-de*")):
        pytest.skip("no apt Translation lists on this machine")
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT), XLA_FLAGS=FAST_COMPILE)
    script = ROOT / "scripts" / "smollm2_drafts_gpu.py"
    run = subprocess.run([sys.executable, "-c", TWO_CALLS, str(script), str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=170)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == [3, 0]
    manifest = draft_data.read_manifest(tmp_path / "data")
    assert manifest["target_tokens_by_split"]["held_out"] > 0  # held-out shards come first
    assert manifest["shards_generated_last_run"] > 0  # the second call skipped the stage
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["drafts"]) == {"neural", "eagle"}
    for name, row in results["drafts"].items():
        assert 0 < row["alpha"]["weights_bytes"] <= 16 * 2**20, name
        held = row["alpha"]["held_out T=0"]
        assert len(held["by_category"]) > 1, name
        for counts in [held["all"], *held["by_category"].values()]:
            assert counts["alpha"] is None or 0.0 <= counts["alpha"] <= 1.0, (name, counts)
        assert row["alpha"]["demo T=0"]["all"]["examined"] > 0
        record = row["T=0"]
        assert record["speedup"] > 0 and record["prompts"] == 3
        assert record["identical_greedy"], name  # greedy speculative == the target alone
    assert (tmp_path / "eagle" / "weights.npz").exists()


def _requests(n: int) -> list[Request]:
    return [Request(f"request {i}", "facts", "p", f"g{i}", str(i), "train") for i in range(n)]


def _generate(calls: list):
    def generate(part, first):
        calls.append(first)
        examples = [{**r.to_json(), "index": first + i, "temperature": 0.0, "prompt_ids": [2],
                     "response_ids": [5] * 3, "response": "", "finished": False}
                    for i, r in enumerate(part)]  # fmt: skip
        return examples, 0

    return generate


def test_write_shards_stops_where_told_and_the_rerun_goes_on(tmp_path):
    calls: list[int] = []

    def stop(manifest):
        return manifest["target_tokens"] >= 12  # two shards of 2 requests x 3 tokens

    first = draft_data.write_shards(tmp_path, _requests(10), _generate(calls), {}, 2,
                                    progress=False, stop=stop)  # fmt: skip
    assert calls == [0, 2] and not first["complete"] and len(first["shards"]) == 2
    calls.clear()
    second = draft_data.write_shards(tmp_path, _requests(10), _generate(calls), {}, 2,
                                     progress=False)  # fmt: skip
    assert calls == [4, 6, 8] and second["complete"] and second["target_tokens"] == 30


def _driver():
    import importlib.util

    spec = importlib.util.spec_from_file_location("driver", ROOT / "scripts/smollm2_drafts_gpu.py")
    driver = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(driver)
    return driver


def test_data_final_ends_the_data_stage_only_once_there_is_training_data():
    driver = _driver()
    partial = {"target_tokens_by_split": {"held_out": 50, "train": 70}, "complete": False}
    held_only = {"target_tokens_by_split": {"held_out": 50}, "complete": False}
    args = driver.parse_args(["--out", "o", "--target-tokens", "100"])
    final = driver.parse_args(["--out", "o", "--target-tokens", "100", "--data-final"])
    assert not driver._data_done(partial, args) and driver._data_done(partial, final)
    assert not driver._data_done(held_only, final)  # nothing to train on yet: go on generating
    assert driver._data_done(dict(partial, complete=True), args)
