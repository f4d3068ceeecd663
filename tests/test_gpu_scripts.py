"""The H200 studies' scripts run end to end on CPU (--smoke): every record measured, none failed.

They run on a GPU only by hand (BENCHMARKS.md); these runs keep them from rotting in between.
"""

import json
import math
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(script, args, tmp_path, devices=1):
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT),
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")  # fmt: skip
    out = tmp_path / "out.json"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / script), "--smoke", *args,
                           "--out", str(out)], env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(out.read_text())


def test_mesh_benchmark_splits_the_target_and_never_gathers_a_weight(tmp_path):
    records = _run("benchmark_mesh.py", ["--gpus", "1,2"], tmp_path, devices=4)
    assert [r["gpus"] for r in records] == [1, 2]
    for record in records:
        assert "error" not in record, record
        assert record["weight_all_gathers"] == 0
        for key in ("ar_ms_per_token", "spec_ms_per_token", "c"):
            assert math.isfinite(record[key]) and record[key] > 0, (key, record[key])
    assert records[1]["speculative_collectives"], "a 2-way model split must communicate"


def test_scale_study_measures_every_size(tmp_path):
    result = _run("benchmark_t5_scale.py", ["--sizes", "small,base"], tmp_path)
    rows = result["sizes"]
    assert [r["size"] for r in rows] == ["small", "base"]
    for row in rows:
        assert "error" not in row, row
        assert row["logits_finite"] and row["decode_ms_per_token"] > 0
        assert 0 < row["memory_floor_ms"]
    assert result["copy_bandwidth_bytes_per_s"] > 0
