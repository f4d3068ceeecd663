"""T5's multi-head dot-product attention, split so that cached decoding can reuse its pieces.

``project_kv`` and ``attend`` are the two halves of ``__call__``: cached decoding projects the
encoder output once (cross-attention keys and values live in the cache) and attends new
queries against cached keys. As in T5, logits are not scaled by 1/sqrt(H): the scale is folded
into the query kernel's initialiser.

``projections`` picks the parameter layout: 'separate' is T5X's (``query``, ``key``,
``value``); 'qkv' (self-attention) holds one ``qkv`` [D, 3, N*H] kernel, 'q_kv' (attention to
the encoder, whose keys come from another input) ``query`` and one ``kv`` [D, 2, N*H]: fewer
matmuls, hence fewer kernel launches, for the same products.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from spec_decode.models.t5.layers import DenseGeneral, StackedDense

# A masked logit: large enough that exp() underflows to exactly 0 next to any real logit.
MASKED_LOGIT = -1e10

_ATTENTION_INIT = nn.initializers.variance_scaling(1.0, "fan_in", "normal")

PROJECTIONS = ("separate", "qkv", "q_kv")
# The stacked axis mixes query, key and value: never split across devices ('joined_kv' still
# is, each device holding the same heads of every part).
FUSED_AXES = ("embed", None, "joined_kv")


def _query_init(head_dim: int) -> nn.initializers.Initializer:
    def init(key, shape, dtype=jnp.float32):
        return _ATTENTION_INIT(key, shape, dtype) / jnp.sqrt(head_dim).astype(dtype)

    return init


class MultiHeadDotProductAttention(nn.Module):
    """Attention with T5X's ``query``, ``key``, ``value`` [D, N*H] and ``out`` [N*H, D] kernels.

    Attributes:
      num_heads: N.
      head_dim: H.
      features: D, the width of the inputs and of the output.
      dtype: activation dtype.
      dropout_rate: dropout of the attention weights (broadcast over queries), when asked for.
      float32_logits: compute q.k and the softmax input in float32.
      implementation: 'einsum' (T5X's two einsums), or 'xla' / 'cudnn' for
        ``jax.nn.dot_product_attention`` (float32 logits always; not with dropout).
    """

    num_heads: int
    head_dim: int
    features: int
    dtype: Any = jnp.float32
    dropout_rate: float = 0.0
    float32_logits: bool = False
    implementation: str = "einsum"
    projections: str = "separate"

    def setup(self):
        heads = (self.num_heads, self.head_dim)
        query_init = _query_init(self.head_dim)

        def projection(init):
            return DenseGeneral(
                heads, dtype=self.dtype, kernel_init=init, kernel_axes=("embed", "joined_kv")
            )

        def stacked(inits):
            return StackedDense(heads, inits, dtype=self.dtype, kernel_axes=FUSED_AXES)

        if self.projections not in PROJECTIONS:
            raise ValueError(
                f"projections={self.projections!r} is not allowed: it must be one of {PROJECTIONS}"
            )
        if self.projections == "qkv":
            self.qkv = stacked((query_init, _ATTENTION_INIT, _ATTENTION_INIT))
        else:
            self.query = projection(query_init)
        if self.projections == "q_kv":
            self.kv = stacked((_ATTENTION_INIT, _ATTENTION_INIT))
        elif self.projections == "separate":
            self.key = projection(_ATTENTION_INIT)
            self.value = projection(_ATTENTION_INIT)
        self.out = DenseGeneral(
            self.features,
            num_input_axes=2,
            dtype=self.dtype,
            kernel_init=_ATTENTION_INIT,
            kernel_axes=("joined_kv", "embed"),
        )

    def __call__(
        self,
        inputs_q: jax.Array,
        inputs_kv: jax.Array,
        mask: jax.Array | None = None,
        bias: jax.Array | None = None,
        deterministic: bool = True,
    ) -> jax.Array:
        """inputs_q [B, Q, D], inputs_kv [B, Kk, D] -> [B, Q, D].

        mask: broadcastable to [B, 1, Q, Kk], nonzero where a query may attend to a key.
        bias: broadcastable to [B, N, Q, Kk], added to the logits (relative positions).
        """
        if self.projections == "qkv":
            if inputs_q is not inputs_kv:
                raise ValueError(
                    "projections='qkv' is not allowed with inputs_kv other than inputs_q: one "
                    "kernel projects queries, keys and values of the same input"
                )
            query, key, value = self.project_qkv(inputs_q)
        else:
            query = self.query(inputs_q)
            key, value = self.project_kv(inputs_kv)
        return self.attend(query, key, value, mask, bias, deterministic)

    def project_qkv(self, inputs: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Self-attention inputs [B, K, D] -> queries, keys, values [B, K, N, H]."""
        if self.projections == "qkv":
            qkv = self.qkv(inputs)  # [B, K, 3, N, H]
            return qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        return (self.query(inputs), *self.project_kv(inputs))

    def project_kv(self, inputs_kv: jax.Array) -> tuple[jax.Array, jax.Array]:
        """inputs_kv [B, Kk, D] -> keys and values [B, Kk, N, H]."""
        if self.projections == "q_kv":
            kv = self.kv(inputs_kv)  # [B, Kk, 2, N, H]
            return kv[:, :, 0], kv[:, :, 1]
        if self.projections == "qkv":
            return self.project_qkv(inputs_kv)[1:]
        return self.key(inputs_kv), self.value(inputs_kv)

    def attend(
        self,
        query: jax.Array,
        key: jax.Array,
        value: jax.Array,
        mask: jax.Array | None = None,
        bias: jax.Array | None = None,
        deterministic: bool = True,
    ) -> jax.Array:
        """Projected query [B, Q, N, H] against key, value [B, Kk, N, H] -> [B, Q, D]."""
        attention_bias = None
        if mask is not None:
            attention_bias = jnp.where(mask > 0, 0.0, MASKED_LOGIT).astype(self.dtype)
        if bias is not None:
            attention_bias = bias if attention_bias is None else attention_bias + bias
        dropout_rng = None
        if not deterministic and self.dropout_rate > 0:
            dropout_rng = self.make_rng("dropout")
        if dropout_rng is None and self.implementation != "einsum":
            return self.out(fused_attention(query, key, value, attention_bias, self.implementation))
        x = dot_product_attention(
            query,
            key,
            value,
            attention_bias,
            dropout_rng=dropout_rng,
            dropout_rate=self.dropout_rate,
            dtype=self.dtype,
            float32_logits=self.float32_logits,
        )  # [B, Q, N, H]
        return self.out(x)


def dot_product_attention(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    bias: jax.Array | None,
    dropout_rng: jax.Array | None = None,
    dropout_rate: float = 0.0,
    dtype: Any = jnp.float32,
    float32_logits: bool = False,
) -> jax.Array:
    """softmax(q.k + bias) v: query [B, Q, N, H], key, value [B, Kk, N, H] -> [B, Q, N, H].

    Dropout (when ``dropout_rng`` is given) drops whole key columns for all queries of a head,
    as T5 does.
    """
    if float32_logits:
        query = query.astype(jnp.float32)
        key = key.astype(jnp.float32)
    logits = jnp.einsum("bqnh,bknh->bnqk", query, key)  # [B, N, Q, Kk]
    if bias is not None:
        logits = logits + bias.astype(logits.dtype)
    weights = jax.nn.softmax(logits).astype(dtype)
    if dropout_rng is not None:
        keep_prob = 1.0 - dropout_rate
        keep_shape = (*weights.shape[:-2], 1, weights.shape[-1])
        keep = jax.random.bernoulli(dropout_rng, keep_prob, keep_shape)
        weights = weights * (keep.astype(dtype) / jnp.asarray(keep_prob, dtype))
    return jnp.einsum("bnqk,bknh->bqnh", weights, value)


def fused_attention(
    query: jax.Array, key: jax.Array, value: jax.Array, bias: jax.Array | None, implementation: str
) -> jax.Array:
    """``dot_product_attention`` through ``jax.nn.dot_product_attention``: one call that XLA
    ('xla') or cuDNN ('cudnn') may run as a single kernel. Unscaled logits, as T5; the mask is
    already folded into ``bias`` [B or 1, N or 1, Q, Kk] as MASKED_LOGIT entries."""
    key, value = key.astype(query.dtype), value.astype(query.dtype)
    if bias is not None:
        shape = (query.shape[0], bias.shape[1], query.shape[1], key.shape[1])
        bias = jnp.broadcast_to(bias, shape).astype(query.dtype)
    return jax.nn.dot_product_attention(
        query, key, value, bias=bias, scale=1.0,
        implementation=None if implementation == "xla" else implementation,
    )  # fmt: skip
