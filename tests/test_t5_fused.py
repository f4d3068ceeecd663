"""T5's fused projections: the same model as T5X's tree, in fewer matmuls."""

from __future__ import annotations

import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from spec_decode.core.decoder import DecoderParams, SpeculativeDecoder
from spec_decode.models.t5 import T5Config, T5Decoding, make_t5_inputs

TINY = dict(vocab_size=40, emb_dim=16, num_heads=2, head_dim=8, mlp_dim=32, dropout_rate=0.0)
T5_1_1 = T5Config(
    **TINY, num_encoder_layers=2, num_decoder_layers=2, mlp_activations=("gelu", "linear"),
    attention="einsum",
)  # fmt: skip
T5_1_0 = dataclasses.replace(
    T5_1_1, num_encoder_layers=1, mlp_activations=("relu",), logits_via_embedding=True
)
DRAFT = dataclasses.replace(T5_1_1, num_encoder_layers=1, num_decoder_layers=1)
# Per decoder layer and step: query, key, value -> qkv and wi_0, wi_1 -> wi_fused.
FEWER_DOTS_PER_LAYER = 3

extend = jax.jit(T5Decoding.extend, static_argnums=0)
init_cache = jax.jit(T5Decoding.init_cache, static_argnums=(0, 2, 3))


def flat(tree):
    return traverse_util.flatten_dict(tree, sep="/")


def setup(config, seed=0, batch=2, source=7):
    model = T5Decoding(config)
    keys = jax.random.split(jax.random.key(seed), 2)
    params = jax.jit(model.init)(keys[0])
    encoder = jax.random.randint(keys[1], (batch, source), 2, config.vocab_size)
    return model, params, encoder.at[0, source - 2 :].set(0)  # row 0 has encoder padding


@pytest.mark.parametrize("config", [T5_1_1, T5_1_0], ids=["t5_1_1", "t5_1_0"])
def test_fuse_then_unfuse_is_the_identity_and_the_tree_matches_the_fused_module(config):
    model, params, _ = setup(config)
    fused = model.fuse_params(params)
    back = model.unfuse_params(fused)
    assert flat(back).keys() == flat(params).keys()
    for name, value in flat(params).items():
        np.testing.assert_array_equal(flat(back)[name], value)
    shapes = flat(jax.eval_shape(model.fused.init, jax.random.key(0)))
    assert {k: v.shape for k, v in flat(fused).items()} == {k: v.shape for k, v in shapes.items()}
    axes = flat(model.fused.logical_axes())
    assert axes.keys() == shapes.keys()
    assert tuple(axes["decoder/layers_0/self_attention/qkv/kernel"]) == ("embed", None, "joined_kv")
    assert tuple(axes["decoder/layers_1/encoder_decoder_attention/kv/kernel"]) == (
        "embed", None, "joined_kv",
    )  # fmt: skip
    assert ("decoder/layers_0/mlp/wi_fused/kernel" in axes) == (len(config.mlp_activations) > 1)


def test_fuse_params_refuses_a_fused_tree_and_the_flag_is_validated():
    model, params, _ = setup(T5_1_1)
    with pytest.raises(ValueError, match="already fused"):
        model.fuse_params(model.fuse_params(params))
    with pytest.raises(ValueError, match="fuse_params makes"):
        model.unfuse_params(params)
    with pytest.raises(ValueError, match="fused_projections"):
        dataclasses.replace(T5_1_1, fused_projections=1)


@pytest.mark.parametrize("config", [T5_1_1, T5_1_0], ids=["t5_1_1", "t5_1_0"])
def test_fused_and_canonical_extend_give_the_same_logits(config):
    model, params, encoder = setup(config)
    tokens = jax.random.randint(jax.random.key(3), (2, 9), 1, config.vocab_size).at[:, 0].set(0)
    runs = []
    for m, p in ((model, params), (model.fused, model.fuse_params(params))):
        inputs = make_t5_inputs(p, encoder)
        cache, logits, start = init_cache(m, inputs, 2, 12), [], 0
        for size in (1, 3, 1, 4):  # several K, each row at its own end
            chunk, cache = extend(m, inputs, tokens[:, start : start + size], cache)
            logits.append(chunk)
            start += size
        runs.append((jnp.concatenate(logits, axis=1), cache))
    (want, want_cache), (got, got_cache) = runs
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_cache.self_keys, want_cache.self_keys, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_cache.cross_values, want_cache.cross_values, atol=1e-6)


@pytest.mark.parametrize("speculative", [True, False], ids=["t5_draft", "autoregressive"])
def test_fused_and_canonical_decode_the_same_greedy_tokens(speculative):
    target, target_params, encoder = setup(T5_1_1)
    draft, draft_params, _ = setup(DRAFT, seed=1)
    prompt = jnp.zeros((2, 1), jnp.int32)  # BOS
    tokens = []
    for fuse in (False, True):
        t, tp = (
            (target.fused, target.fuse_params(target_params)) if fuse else (target, target_params)
        )
        d, dp = (draft.fused, draft.fuse_params(draft_params)) if fuse else (draft, draft_params)
        decoder = SpeculativeDecoder(
            t, d if speculative else None, gamma=3 if speculative else None, max_new_tokens=10
        )
        params = DecoderParams(
            make_t5_inputs(tp, encoder), make_t5_inputs(dp, encoder) if speculative else None
        )
        tokens.append(np.asarray(decoder.run(params, prompt).tokens))
    np.testing.assert_array_equal(tokens[1], tokens[0])


def dots(model, params, encoder) -> int:
    """Matmuls in the optimised HLO of one jitted K = 1 extend."""
    inputs = make_t5_inputs(params, encoder)
    cache = init_cache(model, inputs, 2, 8)
    text = extend.lower(model, inputs, jnp.zeros((2, 1), jnp.int32), cache).compile().as_text()
    return len(re.findall(r"\b(?:dot|convolution)\(", text))


def test_a_fused_step_has_fewer_matmuls_per_decoder_layer():
    model, params, encoder = setup(T5_1_1)
    canonical = dots(model, params, encoder)
    fused = dots(model.fused, model.fuse_params(params), encoder)
    assert canonical - fused == FEWER_DOTS_PER_LAYER * T5_1_1.num_decoder_layers
