"""Logical axis rules, mesh building and sharded decoding.

The decoding checks need 8 devices, and JAX fixes the device count when it starts, so they run
``tests/mesh_check.py`` in subprocesses with 8 host CPU devices (both model families at once,
one process each); the rest runs here on this process's single device.
"""

import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AbstractMesh, PartitionSpec

from spec_decode import sharding, speculative_decode
from spec_decode.models import LlamaConfig, LlamaLM

CHECK = pathlib.Path(__file__).with_name("mesh_check.py")
MESH_2x4 = AbstractMesh((2, 4), ("data", "model"))


@pytest.fixture(scope="module")
def mesh_runs():
    """Both families' subprocesses, started together so that they share the wait."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    ).strip()
    runs = {
        family: subprocess.Popen(
            [sys.executable, str(CHECK), family],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for family in ("llama", "t5")
    }
    yield runs
    for run in runs.values():
        if run.poll() is None:
            run.kill()


@pytest.mark.slow
@pytest.mark.parametrize("family", ["llama", "t5"])
def test_sharded_decoding_equals_single_device(mesh_runs, family):
    """Meshes (1, 8), (2, 4), (8, 1): same tokens, params really split, no weight gathered."""
    output, _ = mesh_runs[family].communicate(timeout=600)
    assert mesh_runs[family].returncode == 0, output[-6000:]
    assert '"seconds"' in output


def test_standard_rules_follow_t5x():
    spec = sharding.mesh_spec
    assert spec(PartitionSpec("vocab", "embed"), (128, 40), MESH_2x4) == PartitionSpec(
        "model", None
    )
    assert spec(PartitionSpec("embed", "joined_kv"), (40, 48), MESH_2x4) == PartitionSpec(
        None, "model"
    )
    kv = PartitionSpec("layers", "cache_batch", "cache_sequence", "cache_heads", "cache_kv")
    assert spec(kv, (2, 8, 30, 4, 6), MESH_2x4) == PartitionSpec(None, "data", None, "model", None)
    assert spec(PartitionSpec("batch", None), (8, 5), MESH_2x4) == PartitionSpec("data", None)
    # A name without a rule is replicated.
    assert spec(PartitionSpec("unknown"), (8,), MESH_2x4) == PartitionSpec(None)


def test_overrides_shadow_the_standard_rules():
    rules = sharding.make_rules([("mlp", None), ("embed", "model")])
    assert rules[:2] == (("mlp", None), ("embed", "model"))
    got = sharding.mesh_spec(PartitionSpec("embed", "mlp"), (40, 96), MESH_2x4, rules)
    assert got == PartitionSpec("model", None)
    # 'model' already splits the first dimension: the second one stays whole.
    got = sharding.mesh_spec(PartitionSpec("embed", "vocab"), (40, 128), MESH_2x4, rules)
    assert got == PartitionSpec("model", None)
    both = sharding.make_rules([("batch", ("data", "model"))])
    got = sharding.mesh_spec(PartitionSpec("batch"), (16,), MESH_2x4, both)
    assert got == PartitionSpec(("data", "model"))


def test_indivisible_dimension_is_replicated_with_a_warning():
    with pytest.warns(UserWarning, match=r"key.*\(2, 40, 3, 6\).*'heads'.*size 4"):
        got = sharding.mesh_spec(
            PartitionSpec("layers", "embed", "heads", "kv"), (2, 40, 3, 6), MESH_2x4, None, "key"
        )
    assert got == PartitionSpec(None, None, None, None)


MODEL = LlamaLM(
    LlamaConfig(
        vocab_size=128, num_layers=2, emb_dim=40, num_heads=8, num_kv_heads=4, head_dim=6,
        mlp_dim=96,
    )
)  # fmt: skip


def test_param_shardings_cover_the_llama_tree():
    model = MODEL
    shapes = jax.eval_shape(model.init, jax.random.key(0))
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]).reshape(1, 1), ("data", "model"))
    shardings = sharding.param_shardings(shapes, model.logical_axes(), mesh)
    assert shardings["layers"]["mlp"]["gate"]["kernel"].spec == PartitionSpec(None, None, "model")
    assert shardings["embed"]["embedding"].spec == PartitionSpec("model", None)
    with pytest.raises(ValueError, match="logical_axes do not match params"):
        sharding.param_shardings({"embed": shapes["embed"]}, model.logical_axes(), mesh)


def test_make_mesh_on_this_process():
    mesh = sharding.make_mesh()
    assert mesh.axis_names == ("data", "model")
    assert dict(mesh.shape) == {"data": jax.device_count(), "model": 1}
    count = jax.device_count()
    with pytest.raises(ValueError, match="model=0"):
        sharding.make_mesh(model=0)
    with pytest.raises(ValueError, match="must divide the number of devices"):
        sharding.make_mesh(model=count + 1)
    with pytest.raises(ValueError, match="data \\* model must equal"):
        sharding.make_mesh(data=count + 1)


def test_bad_arguments_are_named():
    for bad in ("data", [("batch",)], [(1, "data")], [("batch", 3)]):
        with pytest.raises(ValueError, match="rules"):
            sharding.check_rules(bad)
    with pytest.raises(ValueError, match="mesh has axes"):
        sharding.mesh_spec(PartitionSpec("batch"), (8,), MESH_2x4, [("batch", "pod")])
    with pytest.raises(ValueError, match="one name per dimension"):
        sharding.mesh_spec(PartitionSpec("batch"), (8, 2), MESH_2x4)
    with pytest.raises(ValueError, match="shard_draft"):
        sharding.place_draft(MODEL, {}, sharding.make_mesh(), shard_draft=1)
    with pytest.raises(ValueError, match="mesh="):
        speculative_decode(MODEL, {}, MODEL, {}, jnp.ones((1, 2), jnp.int32), mesh="2x4")
    with pytest.raises(ValueError, match="rules"):
        speculative_decode(MODEL, {}, MODEL, {}, jnp.ones((1, 2), jnp.int32), rules="data")


def test_replicated_model_keeps_only_rows_split():
    wrapped = sharding.Replicated(MODEL)
    assert wrapped.vocab_size == MODEL.vocab_size and hash(wrapped) == hash(
        sharding.Replicated(MODEL)
    )
    axes = wrapped.cache_logical_axes()
    assert axes.k == PartitionSpec(None, "cache_batch", None, None, None)
    assert axes.lengths == PartitionSpec("cache_batch")
