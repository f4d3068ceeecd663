"""The pieces of a Llama decoder block: RMSNorm, rotary embeddings, attention, SwiGLU mlp.

Semantics follow Hugging Face's ``LlamaForCausalLM`` so that converted checkpoints give the same
logits: norms and softmax in float32, rotary in the "rotate half" convention, grouped-query
attention with key/value head j serving query heads j*G .. j*G + G - 1 (G = N / Nkv).

Every parameter is declared with T5X-style logical axis names ('vocab', 'embed', 'heads', 'kv',
'mlp'); the scan over layers adds 'layers' in front. Declared parameters start at zero (norm
scales at one): ``LlamaLM.init`` draws the random values for the whole tree at once.

With ``fused_projections`` the block holds ``attention/qkv`` [D, N + 2 Nkv, H] in place of
``query``, ``key`` and ``value``, and ``mlp/gate_up`` [D, 2, F] in place of ``gate`` and ``up``
(``LlamaLM.fuse_params`` builds them from the canonical tree): one matmul each instead of three
and two, which at batch 1 is one kernel launch instead of several.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from spec_decode.models.llama import attention as attention_lib
from spec_decode.models.llama import pallas_attention
from spec_decode.models.llama.config import LlamaConfig

Dtype = Any

# Logical axis names of each parameter (without the scanned 'layers' axis).
EMBEDDING_AXES = ("vocab", "embed")
LM_HEAD_AXES = ("embed", "vocab")
NORM_AXES = ("embed",)
QUERY_AXES = ("embed", "heads", "kv")
# The fused axes mix query, key and value heads (or gate and up): not split across devices.
QKV_AXES = ("embed", None, "kv")
GATE_UP_AXES = ("embed", None, "mlp")
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


def rotary_table(positions: jax.Array, head_dim: int, theta: float) -> tuple[jax.Array, jax.Array]:
    """sin, cos [B, K, 1, H/2] float32 of positions [B, K]: computed once per call and shared by
    every layer (the same positions rotate every layer's queries and keys)."""
    inv_freq = 1.0 / theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim)  # [H/2]
    angles = positions.astype(jnp.float32)[..., None] * inv_freq  # [B, K, H/2]
    return jnp.sin(angles)[:, :, None, :], jnp.cos(angles)[:, :, None, :]


def rotate(x: jax.Array, table: tuple[jax.Array, jax.Array]) -> jax.Array:
    """Rotate x [B, K, N, H] by a ``rotary_table`` (HF "rotate half": pairs are (i, i + H/2))."""
    sin, cos = table
    first, second = jnp.split(x.astype(jnp.float32), 2, axis=-1)
    rotated = jnp.concatenate([first * cos - second * sin, second * cos + first * sin], axis=-1)
    return rotated.astype(x.dtype)


def apply_rotary(x: jax.Array, positions: jax.Array, theta: float) -> jax.Array:
    """Rotate x [B, K, N, H] by its positions [B, K]."""
    return rotate(x, rotary_table(positions, x.shape[-1], theta))


def _dense(module: nn.Module, name: str, features, axes, axis=-1) -> nn.DenseGeneral:
    return nn.DenseGeneral(
        features=features,
        axis=axis,
        use_bias=False,
        kernel_init=declared(axes),
        dtype=module.dtype,
        param_dtype=module.param_dtype,
        name=name,
    )


class Attention(nn.Module):
    """Rotary grouped-query self-attention; returns its output and the new keys and values.

    ``fused``: one ``qkv`` projection instead of ``query``, ``key``, ``value``; ``attention``:
    an entry of ``ATTENTION_IMPLEMENTATIONS``, or ``BLOCKED`` for prefill chunks (which need a
    cache; see ``attention.py``). ``PALLAS`` rotates and attends in one kernel
    (``pallas_attention.py``): then ``cache`` is every layer's, [Lyr, B, L, Nkv, H], read at
    ``layer``, and ``cache_mask`` is the rows' lengths [B].
    """

    num_heads: int
    num_kv_heads: int
    head_dim: int
    dtype: Dtype
    param_dtype: Dtype
    fused: bool = False
    attention: str = "einsum"

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        rotary: tuple[jax.Array, jax.Array],
        cache: tuple[jax.Array, jax.Array] | None,
        cache_mask: jax.Array | None,
        layer: jax.Array | None = None,
    ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        """x [B, K, D], rotary a ``rotary_table`` of the K positions; cache (keys, values)
        [B, L, Nkv, H], mask [B, K or 1, L].

        Without a cache this is plain causal self-attention over the K positions.
        """
        heads, kv_heads = self.num_heads, self.num_kv_heads
        if self.attention == attention_lib.PALLAS:
            return self._pallas(x, rotary, cache, cache_mask, layer)
        if self.fused:
            qkv = _dense(self, "qkv", (heads + 2 * kv_heads, self.head_dim), QKV_AXES)(x)
            # Query and key heads rotate together: one elementwise pass.
            rotated = rotate(qkv[:, :, : heads + kv_heads], rotary)
            query, keys = rotated[:, :, :heads], rotated[:, :, heads:]  # [B, K, N|Nkv, H]
            values = qkv[:, :, heads + kv_heads :]  # [B, K, Nkv, H]
        else:
            query = _dense(self, "query", (heads, self.head_dim), QUERY_AXES)(x)
            keys = _dense(self, "key", (kv_heads, self.head_dim), KEY_VALUE_AXES)(x)
            values = _dense(self, "value", (kv_heads, self.head_dim), KEY_VALUE_AXES)(x)
            query, keys = rotate(query, rotary), rotate(keys, rotary)

        num_tokens = x.shape[1]
        causal = jnp.tril(jnp.ones((num_tokens, num_tokens), dtype=bool))[None]  # [1, K, K]
        blocks = [(keys, values, causal)]
        if cache is not None:
            blocks.insert(0, (cache[0], cache[1], cache_mask))
        if self.attention == attention_lib.BLOCKED:
            out = attention_lib.attend_blocked(query, keys, values, cache, cache_mask)
        elif self.attention == "einsum":
            out = attention_lib.attend(query, blocks)  # [B, K, N, H]
        else:
            out = attention_lib.attend_fused(query, blocks, self.attention)
        out = _dense(self, "out", x.shape[-1], OUT_AXES, axis=(-2, -1))(out)
        return out, (keys, values)

    def _pallas(self, x, rotary, cache, lengths, layer):
        heads, kv_heads = self.num_heads, self.num_kv_heads
        if self.fused:
            qkv = _dense(self, "qkv", (heads + kv_heads * 2, self.head_dim), QKV_AXES)(x)
        else:  # the canonical tree: one join of the three projections
            qkv = jnp.concatenate(
                [
                    _dense(self, "query", (heads, self.head_dim), QUERY_AXES)(x),
                    _dense(self, "key", (kv_heads, self.head_dim), KEY_VALUE_AXES)(x),
                    _dense(self, "value", (kv_heads, self.head_dim), KEY_VALUE_AXES)(x),
                ],
                axis=2,
            )  # [B, K, N + 2 Nkv, H]
        sin, cos = rotary
        out, keys = pallas_attention.rotary_attention(
            qkv, sin[:, :, 0], cos[:, :, 0], cache[0], cache[1], layer, lengths,
            num_heads=heads, num_kv_heads=kv_heads, interpret=jax.default_backend() != "gpu",
        )  # fmt: skip
        out = _dense(self, "out", x.shape[-1], OUT_AXES, axis=(-2, -1))(out)
        return out, (keys, qkv[:, :, heads + kv_heads :])


class Mlp(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x)); ``fused``: gate and up as one ``gate_up`` matmul."""

    mlp_dim: int
    dtype: Dtype
    param_dtype: Dtype
    fused: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.fused:
            gate_up = _dense(self, "gate_up", (2, self.mlp_dim), GATE_UP_AXES)(x)  # [B, K, 2, F]
            gate, up = gate_up[..., 0, :], gate_up[..., 1, :]
        else:
            gate = _dense(self, "gate", self.mlp_dim, MLP_IN_AXES)(x)  # [B, K, F]
            up = _dense(self, "up", self.mlp_dim, MLP_IN_AXES)(x)
        return _dense(self, "down", x.shape[-1], MLP_OUT_AXES)(nn.silu(gate) * up)


class DecoderBlock(nn.Module):
    """Pre-norm residual block: x + attention(norm(x)), then x + mlp(norm(x)).

    Written for ``nn.scan``: the residual stream x is the carry, the layer's cache slice is the
    scanned input and the new keys and values are the scanned output. With the ``PALLAS``
    attention the carry is (x, layer index, rotary, every layer's cache, the rows' lengths
    [B]) and the other inputs are None: the kernel reads its layer in place (a slice would be
    a copy).
    """

    config: LlamaConfig
    attention: str = "einsum"

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        cache: tuple[jax.Array, jax.Array] | None,
        rotary: tuple[jax.Array, jax.Array],
        cache_mask: jax.Array | None,
    ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        cfg = self.config
        dtype, param_dtype = jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype)
        layer = None
        if self.attention == attention_lib.PALLAS:
            x, layer, rotary, cache, cache_mask = carry = x
        norm = RMSNorm(cfg.norm_eps, dtype, param_dtype, name="attention_norm")(x)
        attention_out, new_kv = Attention(
            num_heads=cfg.num_heads,
            num_kv_heads=cfg.num_kv_heads,
            head_dim=cfg.head_dim,
            dtype=dtype,
            param_dtype=param_dtype,
            fused=cfg.fused_projections,
            attention=self.attention,
            name="attention",
        )(norm, rotary, cache, cache_mask, layer)
        x = x + attention_out.astype(x.dtype)
        norm = RMSNorm(cfg.norm_eps, dtype, param_dtype, name="mlp_norm")(x)
        mlp_out = Mlp(
            mlp_dim=cfg.mlp_dim,
            dtype=dtype,
            param_dtype=param_dtype,
            fused=cfg.fused_projections,
            name="mlp",
        )(norm)
        x = x + mlp_out.astype(x.dtype)
        if layer is not None:
            return (x, layer + 1, *carry[2:]), new_kv
        return x, new_kv
