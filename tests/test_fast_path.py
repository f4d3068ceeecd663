"""The launch-bound fast paths compute what the reference paths compute.

Unrolled layers, fused projections and ``jax.nn.dot_product_attention`` change how many kernels
a step launches, not its result: each variant's cached decoding equals the canonical model's
full forward pass, the fused tree round-trips to the canonical one, and T5's fused attention
equals T5X's einsums.
"""

import dataclasses
import functools
import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_decode.models.llama import LlamaConfig, LlamaLM, tiny_llama
from spec_decode.models.llama.config import fast_path
from spec_decode.models.t5 import T5Config, T5Decoding, make_t5_inputs

ROOT = pathlib.Path(__file__).resolve().parents[1]
VARIANTS = [
    dict(layer_unroll=1, attention="einsum"),
    dict(layer_unroll=3, attention="einsum"),
    dict(layer_unroll=2, attention="xla"),
    dict(layer_unroll=3, attention="xla"),
]


@functools.cache
def _llama():
    return tiny_llama(3, 0)


def _cached(model, params, tokens, split):
    cache = model.init_cache(params, tokens.shape[0], 16)
    extend = jax.jit(model.extend)
    first, cache = extend(params, tokens[:, :split], cache)
    second, _ = extend(params, tokens[:, split:], cache)
    return jnp.concatenate([first, second], axis=1)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"{v['layer_unroll']}-{v['attention']}")
def test_every_llama_variant_decodes_as_the_canonical_full_forward(variant, fused):
    model, params = _llama()
    tokens = jax.random.randint(jax.random.key(1), (2, 7), 0, model.vocab_size)
    reference = jax.jit(model.forward)(params, tokens)
    fast = LlamaLM(dataclasses.replace(model.config, **variant))
    fast_params = params
    if fused:
        fast, fast_params = fast.fused, model.fuse_params(params)
    np.testing.assert_allclose(_cached(fast, fast_params, tokens, 4), reference, atol=1e-5)


def test_fused_params_round_trip_and_a_fused_model_inits_the_fused_tree():
    model, params = _llama()
    fused = model.fuse_params(params)
    cfg = model.config
    assert fused["layers"]["attention"]["qkv"]["kernel"].shape == (
        cfg.num_layers, cfg.emb_dim, cfg.num_heads + 2 * cfg.num_kv_heads, cfg.head_dim
    )  # fmt: skip
    assert fused["layers"]["mlp"]["gate_up"]["kernel"].shape == (
        cfg.num_layers, cfg.emb_dim, 2, cfg.mlp_dim
    )  # fmt: skip
    back = model.fused.unfuse_params(fused)
    assert jax.tree.structure(back) == jax.tree.structure(params)
    assert all(jax.tree.leaves(jax.tree.map(lambda a, b: bool((a == b).all()), back, params)))
    shapes = jax.eval_shape(model.fused.init, jax.random.key(0))
    assert jax.tree.map(jnp.shape, shapes) == jax.tree.map(jnp.shape, fused)


def test_defaults_follow_the_backend_and_explicit_fields_win():
    cfg = _llama()[0].config
    assert fast_path(cfg, "cpu") == (1, "einsum")
    assert fast_path(cfg, "gpu") == (cfg.num_layers, "xla")
    explicit = dataclasses.replace(cfg, layer_unroll=99, attention="cudnn")
    assert fast_path(explicit, "cpu") == (cfg.num_layers, "cudnn")


@pytest.mark.parametrize(
    "field, value",
    [("layer_unroll", 0), ("layer_unroll", True), ("attention", "flash"),
     ("fused_projections", 1)],
)  # fmt: skip
def test_bad_fast_path_fields_are_refused_by_name(field, value):
    base = dict(vocab_size=8, num_layers=1, emb_dim=8, num_heads=2, num_kv_heads=1, head_dim=4,
                mlp_dim=8)  # fmt: skip
    with pytest.raises(ValueError, match=field):
        LlamaConfig(**base, **{field: value})


def test_t5_fused_attention_equals_t5x_einsums_cached_and_full():
    config = T5Config(
        vocab_size=64, emb_dim=32, num_heads=4, num_encoder_layers=2, num_decoder_layers=2,
        head_dim=8, mlp_dim=48, mlp_activations=("gelu", "linear"), dropout_rate=0.0,
        attention="einsum",
    )  # fmt: skip
    model = T5Decoding(config)
    encoder = jax.random.randint(jax.random.key(1), (2, 5), 1, 64).at[1, 3:].set(0)
    inputs = make_t5_inputs(model.init(jax.random.key(0)), encoder)
    tokens = jax.random.randint(jax.random.key(2), (2, 6), 1, 64)
    reference = model.forward(inputs, tokens)
    fast = T5Decoding(dataclasses.replace(config, attention="xla"))
    np.testing.assert_allclose(fast.forward(inputs, tokens), reference, atol=1e-5)
    np.testing.assert_allclose(_cached(fast, inputs, tokens, 3), reference, atol=1e-5)
    with pytest.raises(ValueError, match="attention"):
        dataclasses.replace(config, attention="flash")


def test_kernel_budget_smoke_writes_counts_for_every_model(tmp_path):
    out = tmp_path / "kernel_budget.json"
    command = [sys.executable, str(ROOT / "scripts" / "kernel_budget.py"), "--smoke",
               "--out", str(out)]  # fmt: skip
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    subprocess.run(command, check=True, env=env, cwd=ROOT, timeout=600)
    result = json.loads(out.read_text())
    records = {(r["model"], r["variant"]): r for r in result["records"]}
    assert set(records) == {("llama_target", "old"), ("llama_target", "new"),
                            ("llama_draft", "new"), ("t5_small", "old"),
                            ("t5_small", "new")}  # fmt: skip
    assert all(r["kernels_per_step"] > 0 and r["decode_ms_per_token"] > 0 for r in records.values())
    assert records["llama_target", "new"]["verify_over_step"] > 0
    # Fused T5 projections: fewer kernels per step than T5X's tree with the einsum attention.
    assert (
        records["t5_small", "new"]["kernels_per_step"]
        < records["t5_small", "old"]["kernels_per_step"]
    )
    child = result["command_buffer"]
    assert child["returncode"] == 0 and child["records"][0]["kernels_per_step"] > 0
