"""T5 (T5X's tree and semantics): cached K-token decoding equals the full forward pass, and
``prefill`` (no output layer) writes the cache ``extend`` writes."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from spec_decode.core import contract
from spec_decode.core.contract import LanguageModel, rollback
from spec_decode.core.prefill import chunked_prefill
from spec_decode.models.t5 import T5Config, T5Decoding, Transformer, make_t5_inputs
from spec_decode.models.t5.layers import relative_position_bucket

TINY = dict(vocab_size=40, emb_dim=16, num_heads=2, head_dim=8, mlp_dim=32, dropout_rate=0.0)
T5_1_1 = T5Config(
    **TINY, num_encoder_layers=2, num_decoder_layers=2, mlp_activations=("gelu", "linear")
)
T5_1_0 = T5Config(
    **TINY,
    num_encoder_layers=1,
    num_decoder_layers=2,
    mlp_activations=("relu",),
    logits_via_embedding=True,
)

extend = jax.jit(T5Decoding.extend, static_argnums=0)
init_cache = jax.jit(T5Decoding.init_cache, static_argnums=(0, 2, 3))
forward = jax.jit(T5Decoding.forward, static_argnums=0)


def assert_close(actual, desired, rel=1e-5):
    """Max error relative to the largest reference value (logits near 0 make rtol useless)."""
    actual, desired = np.asarray(actual, np.float64), np.asarray(desired, np.float64)
    assert actual.shape == desired.shape
    error = np.max(np.abs(actual - desired)) / np.max(np.abs(desired))
    assert error <= rel, f"relative error {error:.2e} > {rel:.0e}"


@functools.cache
def random_setup(config, seed=0, batch=2, source=7, target=8):
    model = T5Decoding(config)
    keys = jax.random.split(jax.random.key(seed), 3)
    params = jax.jit(model.init)(keys[0])
    encoder_tokens = jax.random.randint(keys[1], (batch, source), 2, config.vocab_size)
    encoder_tokens = encoder_tokens.at[0, source - 2 :].set(0)  # row 0 has encoder padding
    decoder_tokens = jax.random.randint(keys[2], (batch, target), 1, config.vocab_size)
    decoder_tokens = decoder_tokens.at[:, 0].set(0)  # BOS
    return model, make_t5_inputs(params, encoder_tokens), decoder_tokens


def feed(model, inputs, tokens, cache, sizes):
    """Extend by consecutive chunks of ``tokens`` [B, T]; return their logits [B, T, V]."""
    logits, start = [], 0
    for size in sizes:
        chunk_logits, cache = extend(model, inputs, tokens[:, start : start + size], cache)
        logits.append(chunk_logits)
        start += size
    return jnp.concatenate(logits, axis=1), cache


def test_config_validates_and_normalises():
    config = T5Config(vocab_size=8, mlp_activations=["gelu", "linear"], dtype=jnp.bfloat16)
    assert config.mlp_activations == ("gelu", "linear") and config.dtype == "bfloat16"
    hash(config)
    for bad in (
        dict(vocab_size=0),
        dict(vocab_size=8, num_heads=2.0),
        dict(vocab_size=8, mlp_activations="relu"),
        dict(vocab_size=8, mlp_activations=("swishy",)),
        dict(vocab_size=8, dtype="int8"),
        dict(vocab_size=8, dropout_rate=1.0),
        dict(vocab_size=8, logits_via_embedding=1),
    ):
        with pytest.raises(ValueError, match=next(iter(bad)) if len(bad) == 1 else None):
            T5Config(**bad)


@pytest.mark.parametrize("config", [T5_1_1, T5_1_0], ids=["t5_1_1", "t5_1_0"])
def test_parameter_tree_and_logical_axes_follow_t5x(config):
    model = T5Decoding(config)
    shapes = jax.eval_shape(model.init, jax.random.key(0))
    flat = {"/".join(k): v.shape for k, v in traverse_util.flatten_dict(shapes).items()}
    axes = {
        "/".join(k): tuple(v) for k, v in traverse_util.flatten_dict(model.logical_axes()).items()
    }
    d, nh, f, v = config.emb_dim, config.num_heads * config.head_dim, config.mlp_dim, 40
    assert flat["token_embedder/embedding"] == (v, d)
    assert axes["token_embedder/embedding"] == ("vocab", "embed")
    assert flat["encoder/relpos_bias/rel_embedding"] == (config.num_heads, 32)
    assert axes["decoder/relpos_bias/rel_embedding"] == ("heads", "relpos_buckets")
    for name in ("query", "key", "value"):
        assert flat[f"encoder/layers_0/attention/{name}/kernel"] == (d, nh)
        assert axes[f"decoder/layers_1/encoder_decoder_attention/{name}/kernel"] == (
            "embed",
            "joined_kv",
        )
    assert flat["decoder/layers_1/self_attention/out/kernel"] == (nh, d)
    assert axes["decoder/layers_1/self_attention/out/kernel"] == ("joined_kv", "embed")
    assert axes["decoder/layers_0/pre_cross_attention_layer_norm/scale"] == ("embed",)
    wi = ["wi"] if len(config.mlp_activations) == 1 else ["wi_0", "wi_1"]
    for name in wi:
        assert flat[f"decoder/layers_0/mlp/{name}/kernel"] == (d, f)
        assert axes[f"decoder/layers_0/mlp/{name}/kernel"] == ("embed", "mlp")
    assert flat["encoder/layers_0/mlp/wo/kernel"] == (f, d)
    assert ("decoder/logits_dense/kernel" in flat) == (not config.logits_via_embedding)
    assert flat.keys() == axes.keys()
    layers = {k.split("/")[1] for k in flat if k.startswith("decoder/layers_")}
    assert layers == {f"layers_{i}" for i in range(config.num_decoder_layers)}


def test_relative_position_bucket_matches_the_t5_formula():
    """The table lookup equals T5's formula evaluated directly, for distances far past 128."""

    def formula(relative, bidirectional, num_buckets=32, max_distance=128):
        n = -relative
        ret = np.zeros_like(n)
        if bidirectional:
            num_buckets //= 2
            ret += (n < 0).astype(np.int32) * num_buckets
            n = np.abs(n)
        else:
            n = np.maximum(n, 0)
        max_exact = num_buckets // 2
        large = max_exact + (
            np.log(n.astype(np.float32) / max_exact + np.finfo(np.float32).eps)
            / np.log(max_distance / max_exact)
            * (num_buckets - max_exact)
        ).astype(np.int32)
        return ret + np.where(n < max_exact, n, np.minimum(large, num_buckets - 1))

    relative = np.arange(-1000, 1000, dtype=np.int32)
    for bidirectional in (True, False):
        got = relative_position_bucket(jnp.asarray(relative), bidirectional, 32, 128)
        np.testing.assert_array_equal(np.asarray(got), formula(relative, bidirectional))


@pytest.mark.parametrize("config", [T5_1_1, T5_1_0], ids=["t5_1_1", "t5_1_0"])
def test_cached_chunks_equal_step_by_step_equal_full_forward(config):
    model, inputs, tokens = random_setup(config)
    assert isinstance(model, LanguageModel)
    full = forward(model, inputs, tokens)  # [B, T, V]
    cache = init_cache(model, inputs, 2, 12)
    stepwise, _ = feed(model, inputs, tokens, cache, [1] * 8)
    chunked, cache = feed(model, inputs, tokens, cache, [3, 1, 4] if config is T5_1_1 else [4, 4])
    assert_close(stepwise, full)
    assert_close(chunked, full)
    np.testing.assert_array_equal(cache.lengths, [8, 8])


prefill = jax.jit(T5Decoding.prefill, static_argnums=0)


@pytest.mark.parametrize("config", [T5_1_1, T5_1_0], ids=["t5_1_1", "t5_1_0"])
def test_prefill_writes_the_cache_extend_writes(config):
    """From ragged row lengths: the same keys, values and lengths, then the same next logits."""
    model, inputs, tokens = random_setup(config)
    assert contract.has_prefill(model) and isinstance(model, contract.Prefiller)
    cache = init_cache(model, inputs, 2, 12)
    _, cache = feed(model, inputs, tokens, cache, [3])
    cache = rollback(cache, jnp.array([3, 1]))
    _, want = extend(model, inputs, tokens[:, 3:7], cache)
    got = prefill(model, inputs, tokens[:, 3:7], cache)
    np.testing.assert_array_equal(got.lengths, [7, 5])
    for b, n in enumerate([7, 5]):
        assert_close(got.self_keys[:, b, :n], want.self_keys[:, b, :n])
        assert_close(got.self_values[:, b, :n], want.self_values[:, b, :n])
    got_logits, _ = extend(model, inputs, tokens[:, 7:8], got)
    want_logits, _ = extend(model, inputs, tokens[:, 7:8], want)
    assert_close(got_logits, want_logits)


def test_chunked_prefill_of_a_decoder_prompt_equals_the_full_forward():
    model, inputs, tokens = random_setup(T5_1_1)
    cache = init_cache(model, inputs, 2, 12)
    cache = chunked_prefill(model, inputs, tokens[:, :7], cache, chunk=3)
    logits, _ = extend(model, inputs, tokens[:, 7:8], cache)
    assert_close(logits, forward(model, inputs, tokens)[:, 7:8])


def test_rollback_rewrites_the_rolled_back_positions():
    """Row 0 keeps 5 tokens, row 1 is rolled back to 2: each continues from its own end."""
    model, inputs, tokens = random_setup(T5_1_1)
    cache = init_cache(model, inputs, 2, 12)
    _, cache = feed(model, inputs, tokens, cache, [1, 4])  # 5 tokens each
    cache = rollback(cache, jnp.array([5, 2]))
    replacement = jax.random.randint(jax.random.key(7), (2, 3), 1, T5_1_1.vocab_size)
    logits, cache = extend(model, inputs, replacement, cache)  # [2, 3, V]
    np.testing.assert_array_equal(cache.lengths, [8, 5])

    row0 = jnp.concatenate([tokens[0, :5], replacement[0]])
    row1 = jnp.concatenate([tokens[1, :2], replacement[1], tokens[1, 5:8]])
    full = forward(model, inputs, jnp.stack([row0, row1]))
    assert_close(logits[0], full[0, 5:8])
    assert_close(logits[1], full[1, 2:5])


def test_cache_holds_the_encoder_once():
    model, inputs, _ = random_setup(T5_1_1)
    cache = init_cache(model, inputs, 2, 12)
    cfg = T5_1_1
    assert cache.cross_keys.shape == (cfg.num_decoder_layers, 2, 7, cfg.num_heads, cfg.head_dim)
    assert cache.self_keys.shape == (cfg.num_decoder_layers, 2, 12, cfg.num_heads, cfg.head_dim)
    np.testing.assert_array_equal(cache.encoder_mask, inputs.encoder_input_tokens > 0)
    np.testing.assert_array_equal(cache.lengths, [0, 0])


def test_teacher_forcing_masks_target_padding_like_t5x():
    """Logits at real target positions do not depend on tokens after the targets end."""
    model, inputs, tokens = random_setup(T5_1_1)
    targets = jnp.concatenate([tokens[:, 1:], jnp.ones((2, 1), jnp.int32)], axis=1)
    targets = targets.at[0, 5:].set(0)
    other = tokens.at[0, 6:].set(3)  # decoder inputs past row 0's end changed
    apply = jax.jit(
        lambda p, d, t: Transformer(T5_1_1).apply(
            {"params": p.params}, p.encoder_input_tokens, d, t, enable_dropout=False
        )
    )
    a, b = apply(inputs, tokens, targets), apply(inputs, other, targets)
    np.testing.assert_array_equal(a[0, :5], b[0, :5])
    assert_close(a[:, :5], forward(model, inputs, tokens)[:, :5])


def test_dropout_draws_from_the_dropout_rng():
    _, inputs, _ = random_setup(T5_1_1)
    variables = {"params": inputs.params}
    tokens = inputs.encoder_input_tokens
    module = Transformer(dataclasses.replace(T5_1_1, dropout_rate=0.5))

    @jax.jit
    def encode(key):
        return module.apply(
            variables, tokens, enable_dropout=True, rngs={"dropout": key}, method="encode"
        )

    assert not np.allclose(encode(jax.random.key(1)), encode(jax.random.key(2)))


def test_bad_arguments_raise_value_errors():
    model, inputs, tokens = random_setup(T5_1_1)
    with pytest.raises(ValueError, match="T5Inputs"):
        model.init_cache(inputs.params, 2, 12)
    with pytest.raises(ValueError, match="batch_size"):
        model.init_cache(inputs, 3, 8)
    with pytest.raises(ValueError, match="max_length"):
        model.init_cache(inputs, 2, 0)
    with pytest.raises(ValueError, match="encoder_input_tokens"):
        make_t5_inputs(inputs.params, jnp.ones((2, 3, 4), jnp.int32))
    cache = init_cache(model, inputs, 2, 12)
    with pytest.raises(ValueError, match="tokens.*shape"):
        model.extend(inputs, tokens[:1, :1], cache)
    with pytest.raises(ValueError, match="tokens.*dtype"):
        model.extend(inputs, jnp.zeros((2, 1)), cache)
    with pytest.raises(ValueError, match="decode=True"):
        Transformer(T5_1_1).apply(
            {"params": inputs.params}, tokens, tokens, tokens, enable_dropout=False, decode=True
        )
