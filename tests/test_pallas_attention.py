"""The Pallas attention kernel computes what the einsum attention computes.

``pallas_attention.rotary_attention`` (rotary, the cache below each row's length and the new
tokens causally, in one kernel) runs interpreted, as plain JAX, off GPUs (the same program
Triton compiles on a GPU, where these tests run it compiled, with
JAX_DEFAULT_MATMUL_PRECISION=highest for the float32 references); it is checked against
``attention.attend`` on the rotated inputs, and a model using it decodes as the canonical
model's full forward pass.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_decode.core.functional import autoregressive_decode, speculative_decode
from spec_decode.core.sampling import SamplingConfig
from spec_decode.models.llama import LlamaLM, attention, layers, pallas_attention, tiny_llama

SHAPES = [  # B, K, N, Nkv, H, L, layer, dtype
    (2, 3, 6, 2, 32, 150, 1, jnp.float32),  # G = 3, a cache longer than two blocks
    (3, 8, 4, 4, 64, 64, 1, jnp.bfloat16),  # G = 1, verification of 7 drafts
    (2, 16, 2, 1, 32, 40, 0, jnp.float32),  # the longest extend the kernel takes
]


def _inputs(B, K, N, Nkv, H, L, dtype, seed=0):
    k1, k2, k3, k4 = jax.random.split(jax.random.key(seed), 4)
    qkv = jax.random.normal(k1, (B, K, N + 2 * Nkv, H), dtype)
    cache_k = jax.random.normal(k2, (2, B, L, Nkv, H), dtype)
    cache_v = jax.random.normal(k3, (2, B, L, Nkv, H), dtype)
    lengths = jax.random.randint(k4, (B,), 0, L - K + 1).at[0].set(L - K)  # 0 allowed: no cache
    return qkv, cache_k, cache_v, lengths.astype(jnp.int32)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}-K{}-N{}-Nkv{}-H{}-L{}-l{}".format(*s))
def test_the_kernel_equals_rotary_then_einsum_attention(shape):
    B, K, N, Nkv, H, L, layer, dtype = shape
    qkv, cache_k, cache_v, lengths = _inputs(B, K, N, Nkv, H, L, dtype)
    positions = lengths[:, None] + jnp.arange(K)
    sin, cos = layers.rotary_table(positions, H, 10000.0)
    query = layers.rotate(qkv[:, :, :N], (sin, cos))
    keys = layers.rotate(qkv[:, :, N : N + Nkv], (sin, cos))
    values = qkv[:, :, N + Nkv :]
    cache_mask = jnp.arange(L) < lengths[:, None, None]
    causal = jnp.tril(jnp.ones((K, K), bool))[None]
    expected = attention.attend(
        query, [(cache_k[layer], cache_v[layer], cache_mask), (keys, values, causal)]
    )
    out, new_keys = pallas_attention.rotary_attention(
        qkv, sin[:, :, 0], cos[:, :, 0], cache_k, cache_v, jnp.int32(layer), lengths,
        num_heads=N, num_kv_heads=Nkv, interpret=jax.default_backend() != "gpu",
    )  # fmt: skip
    assert out.shape == expected.shape and out.dtype == dtype
    # float32: the same products summed in another order (XLA may contract the rotation into
    # fused multiply-adds); bfloat16: one rounding of each output.
    atol = 1e-5 if dtype == jnp.float32 else 2e-2
    np.testing.assert_allclose(
        np.asarray(new_keys, np.float32), np.asarray(keys, np.float32), atol=atol / 10
    )
    np.testing.assert_allclose(
        np.asarray(out, np.float32), np.asarray(expected, np.float32), atol=atol
    )


@functools.cache
def _llama():
    return tiny_llama(2, 0, emb_dim=64, head_dim=32)  # H = 32: the kernel's smallest head


def test_a_fused_model_with_the_kernel_decodes_as_the_canonical_full_forward():
    model, params = _llama()
    tokens = jax.random.randint(jax.random.key(1), (2, 30), 0, model.vocab_size)
    reference = jax.jit(model.forward)(params, tokens)
    fast = LlamaLM(dataclasses.replace(model.config, attention="pallas", layer_unroll=2)).fused
    fast_params = model.fuse_params(params)
    cache = fast.init_cache(fast_params, 2, 40)
    extend = jax.jit(fast.extend)
    pieces = []
    # 20 tokens take the XLA path (over the kernel's 16), then a 1- and a 9-token extend use it.
    for start, stop in [(0, 20), (20, 21), (21, 30)]:
        logits, cache = extend(fast_params, tokens[:, start:stop], cache)
        pieces.append(logits)
    np.testing.assert_allclose(jnp.concatenate(pieces, axis=1), reference, atol=1e-5)


def test_greedy_speculative_with_the_kernel_equals_greedy_autoregressive():
    """The canonical tree (query, key, value joined for the kernel); the target drafting for
    itself, so every draft is accepted and each verification extends 4 tokens."""
    model, params = _llama()
    fast = LlamaLM(dataclasses.replace(model.config, attention="pallas"))
    prompts = jax.random.randint(jax.random.key(2), (2, 6), 0, model.vocab_size)
    lengths = jnp.array([6, 3], jnp.int32)
    greedy = SamplingConfig(temperature=0.0)
    expected = autoregressive_decode(
        model, params, prompts, lengths, max_new_tokens=12, sampling=greedy
    )
    result = speculative_decode(
        fast, params, fast, params, prompts, lengths,
        gamma=3, max_new_tokens=12, sampling=greedy,
    )  # fmt: skip
    np.testing.assert_array_equal(result.tokens, expected.tokens)
    assert int(result.target_calls.max()) <= 4  # 12 tokens in rounds of 4


def test_the_kernel_refuses_what_it_cannot_take():
    qkv, cache_k, cache_v, lengths = _inputs(1, 17, 2, 1, 32, 40, jnp.float32)
    sin = cos = jnp.zeros((1, 17, 16))
    with pytest.raises(ValueError, match="num_tokens=17"):
        pallas_attention.rotary_attention(
            qkv, sin, cos, cache_k, cache_v, jnp.int32(0), lengths, num_heads=2, num_kv_heads=1
        )
    assert not pallas_attention.supported(4, 48) and not pallas_attention.supported(4, 16)
    assert pallas_attention.supported(16, 64)


def test_with_attention_moves_llama_models_and_leaves_others():
    from spec_decode.app.registry import with_attention
    from spec_decode.drafts import PromptLookupDraft, SharedEmbeddingDraft

    model, _ = _llama()
    assert with_attention(model, "pallas").config.attention == "pallas"
    body = dataclasses.replace(model.config, tie_embeddings=True)
    draft = with_attention(SharedEmbeddingDraft(body), "pallas")
    assert draft.body.attention == "pallas" and draft.body.num_layers == body.num_layers
    lookup = PromptLookupDraft(vocab_size=model.vocab_size)
    assert with_attention(lookup, "pallas") is lookup
