"""The Llama decoder: cached extend == uncached forward, rollback, ragged rows, the param tree."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_decode.core.contract import LanguageModel, rollback
from spec_decode.models import LlamaCache, LlamaConfig, LlamaLM

TINY = LlamaConfig(
    vocab_size=64, num_layers=2, emb_dim=32, num_heads=4, num_kv_heads=2, head_dim=8, mlp_dim=48
)
# Eager flax scans retrace on every call; jitted, each (model, shape) compiles once.
extend = jax.jit(LlamaLM.extend, static_argnums=0)
forward = jax.jit(LlamaLM.forward, static_argnums=0)
# (relative tolerance on logits, compared with their overall scale)
TOLERANCE = {"float32": 1e-5, "bfloat16": 3e-2}


def _model(**overrides) -> tuple[LlamaLM, dict]:
    model = LlamaLM(dataclasses.replace(TINY, **overrides))
    params = model.init(jax.random.key(0))
    # Non-unit norm scales, so a norm applied in the wrong place shows up. (numpy, not
    # jax.random, for test data: each eager jax.random call compiles.)
    rng = np.random.default_rng(1)
    for name in ("attention_norm", "mlp_norm"):
        scale = params["layers"][name]["scale"]
        params["layers"][name]["scale"] = scale + 0.5 * rng.standard_normal(scale.shape, np.float32)
    return model, params


def _tokens(seed: int, shape: tuple[int, int]) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).integers(0, TINY.vocab_size, shape), jnp.int32)


def _assert_close(actual, expected, dtype: str) -> None:
    actual, expected = np.asarray(actual, np.float32), np.asarray(expected, np.float32)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOLERANCE[dtype] * scale)


def _extend_in_chunks(model, params, tokens, chunks, max_length=16):
    """Extend a fresh cache chunk by chunk; return the concatenated logits and the cache."""
    cache = model.init_cache(params, tokens.shape[0], max_length)
    logits, start = [], 0
    for size in chunks:
        chunk_logits, cache = extend(model, params, tokens[:, start : start + size], cache)
        logits.append(chunk_logits)
        start += size
    return jnp.concatenate(logits, axis=1), cache


@pytest.mark.parametrize(
    "overrides",
    [
        {},  # tied embeddings, grouped-query attention (Nkv < N)
        {"tie_embeddings": False, "num_kv_heads": 4},  # untied, multi-head (Nkv == N)
        {"num_kv_heads": 1, "dtype": "bfloat16"},  # multi-query attention in bfloat16
    ],
)
def test_extend_equals_forward(overrides):
    model, params = _model(**overrides)
    tokens = _tokens(2, (2, 7))  # [B, T]
    full = forward(model, params, tokens)  # [B, T, V]
    assert full.shape == (2, 7, TINY.vocab_size) and full.dtype == jnp.float32
    all_at_once, cache = _extend_in_chunks(model, params, tokens, [7])
    chunked, _ = _extend_in_chunks(model, params, tokens, [3, 1, 3])
    one_by_one, _ = _extend_in_chunks(model, params, tokens, [1] * 7)
    dtype = model.config.dtype
    _assert_close(all_at_once, full, dtype)
    _assert_close(chunked, full, dtype)
    _assert_close(one_by_one, full, dtype)
    np.testing.assert_array_equal(cache.lengths, [7, 7])
    assert cache.k.dtype == jnp.dtype(dtype)
    assert cache.k.shape == (2, 2, 16, model.config.num_kv_heads, 8)


def test_bfloat16_tracks_float32():
    model32, params = _model()
    model16 = LlamaLM(dataclasses.replace(TINY, dtype=jnp.bfloat16))
    tokens = _tokens(3, (2, 7))
    logits16 = forward(model16, params, tokens)
    assert logits16.dtype == jnp.float32
    _assert_close(logits16, forward(model32, params, tokens), "bfloat16")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_rollback_then_new_tokens_equals_fresh_forward(dtype):
    model, params = _model(dtype=dtype)
    _, cache = _extend_in_chunks(model, params, _tokens(4, (2, 6)), [6])
    old = np.asarray(_tokens(4, (2, 6)))
    new = _tokens(5, (2, 3))
    kept = np.array([2, 4])  # ragged rollback: row 0 keeps 2 tokens, row 1 keeps 4
    logits, cache = extend(model, params, new, rollback(cache, jnp.asarray(kept)))
    np.testing.assert_array_equal(cache.lengths, kept + 3)
    for row in range(2):
        sequence = np.concatenate([old[row, : kept[row]], np.asarray(new[row])])[None]
        expected = forward(model, params, jnp.asarray(sequence))[0, kept[row] :]
        _assert_close(logits[row], expected, dtype)


def test_ragged_rows_match_each_row_alone():
    model, params = _model()
    prompts = _tokens(6, (2, 5))
    cache = model.init_cache(params, 2, 16)
    _, cache = extend(model, params, prompts, cache)
    cache = cache.replace(lengths=jnp.array([2, 5], jnp.int32))
    step = _tokens(7, (2, 2))
    logits, cache = extend(model, params, step, cache)
    for row, length in enumerate([2, 5]):
        alone = model.init_cache(params, 1, 16)
        _, alone = extend(model, params, prompts[row : row + 1, :length], alone)
        expected, _ = extend(model, params, step[row : row + 1], alone)
        _assert_close(logits[row], expected[0], "float32")


def test_is_a_hashable_language_model():
    model = LlamaLM(TINY)
    assert isinstance(model, LanguageModel) and model.vocab_size == TINY.vocab_size
    assert model == LlamaLM(dataclasses.replace(TINY)) and hash(model) == hash(LlamaLM(TINY))
    cache = model.init_cache({}, 3, 8)
    assert isinstance(cache, LlamaCache) and cache.max_length == 8
    assert cache.k.shape == cache.v.shape == (2, 3, 8, 2, 8)
    assert cache.lengths.dtype == jnp.int32


def _expected_shapes(cfg: LlamaConfig) -> dict:
    lyr, d, n, nkv, h, f, v = (
        cfg.num_layers,
        cfg.emb_dim,
        cfg.num_heads,
        cfg.num_kv_heads,
        cfg.head_dim,
        cfg.mlp_dim,
        cfg.vocab_size,
    )
    shapes = {
        "embed": {"embedding": (v, d)},
        "layers": {
            "attention_norm": {"scale": (lyr, d)},
            "attention": {
                "query": {"kernel": (lyr, d, n, h)},
                "key": {"kernel": (lyr, d, nkv, h)},
                "value": {"kernel": (lyr, d, nkv, h)},
                "out": {"kernel": (lyr, n, h, d)},
            },
            "mlp_norm": {"scale": (lyr, d)},
            "mlp": {
                "gate": {"kernel": (lyr, d, f)},
                "up": {"kernel": (lyr, d, f)},
                "down": {"kernel": (lyr, f, d)},
            },
        },
        "final_norm": {"scale": (d,)},
    }
    if not cfg.tie_embeddings:
        shapes["lm_head"] = {"kernel": (d, v)}
    return shapes


@pytest.mark.parametrize("tie", [True, False])
def test_param_tree_and_logical_axes(tie):
    cfg = dataclasses.replace(TINY, tie_embeddings=tie, num_layers=3, param_dtype="bfloat16")
    model = LlamaLM(cfg)
    params = model.init(jax.random.key(0))
    assert type(params) is dict
    assert jax.tree.map(lambda x: tuple(x.shape), params) == _expected_shapes(cfg)
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(params))
    axes = model.logical_axes()
    assert jax.tree.structure(axes) == jax.tree.structure(params)
    names = {"vocab", "embed", "heads", "kv", "mlp", "layers"}
    for param, spec in zip(jax.tree.leaves(params), jax.tree.leaves(axes), strict=True):
        assert len(spec) == param.ndim and set(spec) <= names
    assert tuple(axes["layers"]["attention"]["out"]["kernel"]) == ("layers", "heads", "kv", "embed")

    cache = model.init_cache(params, 2, 8)
    cache_axes = model.cache_logical_axes()
    for array, spec in zip(jax.tree.leaves(cache), jax.tree.leaves(cache_axes), strict=True):
        assert len(spec) == array.ndim


@pytest.mark.parametrize(
    "field, value",
    [
        ("vocab_size", 0),
        ("num_layers", 1.5),
        ("num_heads", 4.0),
        ("num_kv_heads", 3),
        ("head_dim", 7),
        ("mlp_dim", -1),
        ("rope_theta", 0.0),
        ("norm_eps", -1e-5),
        ("tie_embeddings", 1),
        ("dtype", "float16"),
        ("param_dtype", "int32"),
        ("max_length", 0),
    ],
)
def test_bad_config_raises(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(TINY, **{field: value})


def test_bad_call_arguments_raise():
    model = LlamaLM(dataclasses.replace(TINY, max_length=32))
    with pytest.raises(ValueError, match="max_length"):
        model.init_cache({}, 1, 0)
    with pytest.raises(ValueError, match="batch_size"):
        model.init_cache({}, 0, 8)
    cache = model.init_cache({}, 2, 4)
    for tokens in (jnp.zeros((2,), jnp.int32), jnp.zeros((3, 1), jnp.int32)):
        with pytest.raises(ValueError, match="tokens"):
            model.extend({}, tokens, cache)
    with pytest.raises(ValueError, match="tokens"):
        model.extend({}, jnp.zeros((2, 5), jnp.int32), cache)
    with pytest.raises(ValueError, match="tokens"):
        model.forward({}, jnp.zeros((2, 3), jnp.float32))
