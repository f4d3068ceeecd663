"""The mesh flags of the entry points: ``scripts/infer.py --mesh`` (and its gin binding) and
``scripts/benchmark.py --mesh``.

A mesh needs several devices and JAX fixes the device count when it starts, so the two runs are
subprocesses with 8 host CPU devices, started together so that they share the wait. The infer
run on a (2, 4) mesh is greedy, so its predictions must be the target's own greedy decode on
one device (``test_infer.check_predictions``), i.e. what infer.py writes without a mesh.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import gin
import pytest
from test_infer import REPO, TEXTS, check_predictions, infer_command, write_run_files

from spec_decode.t5x_compat import gin_support


def _eight_devices() -> dict[str, str]:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    ).strip()
    return env


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """infer.py --mesh=2,4 and benchmark.py --smoke --mesh 2,4, running side by side."""
    directory = tmp_path_factory.mktemp("mesh_flags")
    paths = write_run_files(directory)
    inputs = directory / "inputs.txt"
    inputs.write_text("\n".join(TEXTS) + "\n")
    infer = infer_command(paths, directory / "infer", f"--gin.INPUT_FILE='{inputs}'", "--mesh=2,4")
    bench = [
        sys.executable, str(REPO / "scripts" / "benchmark.py"), "--smoke", "--mesh", "2,4",
        "--out", str(directory / "bench"),
    ]  # fmt: skip
    started = {
        name: subprocess.Popen(
            command,
            env=_eight_devices(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for name, command in (("infer", infer), ("bench", bench))
    }
    yield directory, paths, started
    for run in started.values():
        if run.poll() is None:
            run.kill()


def _finish(run) -> tuple[str, str]:
    stdout, stderr = run.communicate(timeout=300)
    assert run.returncode == 0, stderr[-4000:]
    return stdout, stderr


def test_infer_mesh_flag_gives_the_single_device_predictions(runs):
    directory, paths, started = runs
    stdout, _ = _finish(started["infer"])
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["mesh"] == {"data": 2, "model": 4}
    check_predictions(directory / "infer", TEXTS, paths["vocab"])


def test_benchmark_mesh_flag_runs(runs):
    directory, _, started = runs
    _finish(started["bench"])
    records = json.loads((directory / "bench" / "results.json").read_text())
    assert len(records) == 4
    for record in records:
        assert record["mesh"] == {"data": 2, "model": 4}
        assert 1 <= record["tokens_per_target_call"] <= record["gamma"] + 1


@pytest.fixture
def clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


@pytest.mark.usefixtures("clean_gin")
def test_run_file_binds_the_mesh_through_gin():
    required = [
        "TARGET_CHECKPOINT_PATH = 'x'", "DRAFT_CHECKPOINT_PATH = 'y'", "INFER_OUTPUT_DIR = 'z'",
    ]  # fmt: skip
    files = ["runs/infer_speculative.gin", "pairs/xxl_small.gin"]
    gin_support.parse_gin(files, required, finalize=False)
    assert gin.query_parameter("%MESH") is None  # one device unless asked
    gin.clear_config()
    bindings = [*required, "MESH = @sharding.make_mesh()", "MESH_MODEL = 1"]
    gin_support.parse_gin(files, bindings, finalize=False)
    assert str(gin.query_parameter("inference.infer.mesh")) == "%MESH"
    mesh = gin.query_parameter("%MESH").scoped_configurable_fn()
    assert mesh.axis_names == ("data", "model") and mesh.shape["model"] == 1
    # The full name that gin_support registers works as well.
    gin.clear_config()
    bindings = [*required, "MESH = @spec_decode.sharding.make_mesh()"]
    gin_support.parse_gin(files, bindings, finalize=False)
    assert gin.query_parameter("%MESH").scoped_configurable_fn().axis_names == ("data", "model")
