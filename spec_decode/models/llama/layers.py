"""The pieces of a Llama decoder block: RMSNorm, rotary embeddings, attention, SwiGLU mlp.

Semantics follow Hugging Face's ``LlamaForCausalLM`` so that converted checkpoints give the same
logits: norms and softmax in float32, rotary in the "rotate half" convention, grouped-query
attention with key/value head j serving query heads j*G .. j*G + G - 1 (G = N / Nkv).

Every parameter is declared with T5X-style logical axis names ('vocab', 'embed', 'heads', 'kv',
'mlp'); the scan over layers adds 'layers' in front. Declared parameters start at zero (norm
scales at one): ``LlamaLM.init`` draws the random values for the whole tree at once.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from spec_decode.models.llama.config import LlamaConfig

Dtype = Any

# Logical axis names of each parameter (without the scanned 'layers' axis).
EMBEDDING_AXES = ("vocab", "embed")
LM_HEAD_AXES = ("embed", "vocab")
NORM_AXES = ("embed",)
QUERY_AXES = ("embed", "heads", "kv")
KEY_VALUE_AXES = ("embed", "heads", "kv")
OUT_AXES = ("heads", "kv", "embed")
MLP_IN_AXES = ("embed", "mlp")
MLP_OUT_AXES = ("mlp", "embed")


def declared(axes: tuple[str, ...]) -> nn.initializers.Initializer:
    """A zero initializer whose parameter is boxed with logical axis names."""
    return nn.with_logical_partitioning(nn.initializers.zeros_init(), axes)


class Kernel(nn.Module):
    """A bare ``kernel`` parameter, for a projection its caller computes (the float32 logits)."""

    shape: tuple[int, ...]
    initializer: nn.initializers.Initializer
    param_dtype: Dtype

    @nn.compact
    def __call__(self) -> jax.Array:
        return self.param("kernel", self.initializer, self.shape, self.param_dtype)


class RMSNorm(nn.Module):
    """x * rsqrt(mean(x^2) + eps) * scale, computed in float32, returned in ``dtype``."""

    eps: float
    dtype: Dtype
    param_dtype: Dtype

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        scale = self.param(
            "scale",
            nn.with_logical_partitioning(nn.initializers.ones, NORM_AXES),
            (x.shape[-1],),
            self.param_dtype,
        )
        x = x.astype(jnp.float32)
        x = x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + self.eps)
        return (x * scale.astype(jnp.float32)).astype(self.dtype)


def apply_rotary(x: jax.Array, positions: jax.Array, theta: float) -> jax.Array:
    """Rotate x [B, K, N, H] by its positions [B, K] (HF "rotate half": pairs are (i, i + H/2))."""
    head_dim = x.shape[-1]
    inv_freq = 1.0 / theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim)  # [H/2]
    angles = positions.astype(jnp.float32)[..., None] * inv_freq  # [B, K, H/2]
    sin = jnp.sin(angles)[:, :, None, :]  # [B, K, 1, H/2]
    cos = jnp.cos(angles)[:, :, None, :]
    first, second = jnp.split(x.astype(jnp.float32), 2, axis=-1)
    rotated = jnp.concatenate([first * cos - second * sin, second * cos + first * sin], axis=-1)
    return rotated.astype(x.dtype)


def attend(query: jax.Array, blocks: list[tuple[jax.Array, jax.Array, jax.Array]]) -> jax.Array:
    """Grouped-query attention of query [B, K, N, H] over one or more key/value blocks.

    Each block is (keys [B, L, Nkv, H], values [B, L, Nkv, H], mask [B, K or 1, L]); one softmax
    runs over all blocks together. Extend passes the cache and the K new positions as two blocks
    so that the cache is only read here (it is written once, after all layers), never copied.
    Every query must see at least one key (itself), so no row of the softmax is empty.
    """
    batch, num_tokens, num_heads, head_dim = query.shape
    num_kv_heads = blocks[0][0].shape[2]
    # Query head h = j * G + g uses key/value head j, as HF's repeat_kv.
    query = query.reshape(batch, num_tokens, num_kv_heads, num_heads // num_kv_heads, head_dim)
    scores = []
    for keys, _, mask in blocks:
        block_scores = jnp.einsum(
            "bkjgh,bljh->bjgkl", query, keys, preferred_element_type=jnp.float32
        ) / math.sqrt(head_dim)  # [B, Nkv, G, K, L]
        masked_value = jnp.finfo(jnp.float32).min
        scores.append(jnp.where(mask[:, None, None, :, :], block_scores, masked_value))
    probs = jax.nn.softmax(jnp.concatenate(scores, axis=-1), axis=-1)  # float32
    out, start = 0.0, 0
    for keys, values, _ in blocks:
        block_probs = probs[..., start : start + keys.shape[1]].astype(values.dtype)
        start += keys.shape[1]
        out += jnp.einsum(
            "bjgkl,bljh->bkjgh", block_probs, values, preferred_element_type=jnp.float32
        )  # [B, K, Nkv, G, H]
    return out.reshape(batch, num_tokens, num_heads, head_dim).astype(query.dtype)


class Attention(nn.Module):
    """Rotary grouped-query self-attention; returns its output and the new keys and values."""

    num_heads: int
    num_kv_heads: int
    head_dim: int
    rope_theta: float
    dtype: Dtype
    param_dtype: Dtype

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        positions: jax.Array,
        cache: tuple[jax.Array, jax.Array] | None,
        cache_mask: jax.Array | None,
    ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        """x [B, K, D], positions [B, K]; cache (keys, values) [B, L, Nkv, H], mask [B, K or 1, L].

        Without a cache this is plain causal self-attention over the K positions.
        """

        def projection(name, heads, axes):
            return nn.DenseGeneral(
                features=(heads, self.head_dim),
                use_bias=False,
                kernel_init=declared(axes),
                dtype=self.dtype,
                param_dtype=self.param_dtype,
                name=name,
            )

        query = projection("query", self.num_heads, QUERY_AXES)(x)  # [B, K, N, H]
        keys = projection("key", self.num_kv_heads, KEY_VALUE_AXES)(x)  # [B, K, Nkv, H]
        values = projection("value", self.num_kv_heads, KEY_VALUE_AXES)(x)  # [B, K, Nkv, H]
        query = apply_rotary(query, positions, self.rope_theta)
        keys = apply_rotary(keys, positions, self.rope_theta)

        num_tokens = x.shape[1]
        causal = jnp.tril(jnp.ones((num_tokens, num_tokens), dtype=bool))[None]  # [1, K, K]
        blocks = [(keys, values, causal)]
        if cache is not None:
            blocks.insert(0, (cache[0], cache[1], cache_mask))
        out = attend(query, blocks)  # [B, K, N, H]
        out = nn.DenseGeneral(
            features=x.shape[-1],
            axis=(-2, -1),
            use_bias=False,
            kernel_init=declared(OUT_AXES),
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            name="out",
        )(out)
        return out, (keys, values)


class Mlp(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    mlp_dim: int
    dtype: Dtype
    param_dtype: Dtype

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        def dense(name, features, axes):
            return nn.DenseGeneral(
                features=features,
                use_bias=False,
                kernel_init=declared(axes),
                dtype=self.dtype,
                param_dtype=self.param_dtype,
                name=name,
            )

        gate = dense("gate", self.mlp_dim, MLP_IN_AXES)(x)  # [B, K, F]
        up = dense("up", self.mlp_dim, MLP_IN_AXES)(x)
        return dense("down", x.shape[-1], MLP_OUT_AXES)(nn.silu(gate) * up)


class DecoderBlock(nn.Module):
    """Pre-norm residual block: x + attention(norm(x)), then x + mlp(norm(x)).

    Written for ``nn.scan``: the residual stream x is the carry, the layer's cache slice is the
    scanned input and the new keys and values are the scanned output.
    """

    config: LlamaConfig

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        cache: tuple[jax.Array, jax.Array] | None,
        positions: jax.Array,
        cache_mask: jax.Array | None,
    ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        cfg = self.config
        dtype, param_dtype = jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype)
        norm = RMSNorm(cfg.norm_eps, dtype, param_dtype, name="attention_norm")(x)
        attention_out, new_kv = Attention(
            num_heads=cfg.num_heads,
            num_kv_heads=cfg.num_kv_heads,
            head_dim=cfg.head_dim,
            rope_theta=cfg.rope_theta,
            dtype=dtype,
            param_dtype=param_dtype,
            name="attention",
        )(norm, positions, cache, cache_mask)
        x = x + attention_out.astype(x.dtype)
        norm = RMSNorm(cfg.norm_eps, dtype, param_dtype, name="mlp_norm")(x)
        mlp_out = Mlp(
            mlp_dim=cfg.mlp_dim,
            dtype=dtype,
            param_dtype=param_dtype,
            name="mlp",
        )(norm)
        return x + mlp_out.astype(x.dtype), new_kv
