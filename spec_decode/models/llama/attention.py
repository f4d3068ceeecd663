"""Grouped-query attention of K new queries over the cache and themselves, two ways.

``attend`` is the plain einsum path: the cache and the K new keys are two blocks under one
softmax, so the cache is read in place and never copied. ``attend_fused`` hands one
concatenated key/value sequence and a boolean mask to ``jax.nn.dot_product_attention``, which
XLA (``implementation=None``) or cuDNN (``'cudnn'``) may run as a single fused kernel; that
costs a copy of the layer's cache slice per step (L * Nkv * H values, small next to the
weights at batch 1) and pays off where the launch count, not bytes, sets the step time.

Both compute softmax(q.k / sqrt(H)) v with float32 logits and softmax, probabilities cast to
the value dtype, and query head h = j * G + g reading key/value head j (HF's repeat_kv).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

Block = tuple[jax.Array, jax.Array, jax.Array]  # keys, values [B, L, Nkv, H], mask [B, K|1, L]

ATTENTION_IMPLEMENTATIONS = ("einsum", "xla", "cudnn")


def attend(query: jax.Array, blocks: list[Block]) -> jax.Array:
    """Grouped-query attention of query [B, K, N, H] over one or more key/value blocks.

    Each block is (keys [B, L, Nkv, H], values [B, L, Nkv, H], mask [B, K or 1, L]); one softmax
    runs over all blocks together. Extend passes the cache and the K new positions as two blocks
    so that the cache is only read here (it is written once, after all layers), never copied.
    Every query must see at least one key (itself), so no row of the softmax is empty.
    """
    batch, num_tokens, num_heads, head_dim = query.shape
    num_kv_heads = blocks[0][0].shape[2]
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


def attend_fused(query: jax.Array, blocks: list[Block], implementation: str) -> jax.Array:
    """``attend`` through ``jax.nn.dot_product_attention`` ('xla': XLA chooses, 'cudnn')."""
    keys = jnp.concatenate([k.astype(query.dtype) for k, _, _ in blocks], axis=1)  # [B, L+K, ..]
    values = jnp.concatenate([v.astype(query.dtype) for _, v, _ in blocks], axis=1)
    batch, num_tokens = query.shape[:2]
    mask = jnp.concatenate(
        [jnp.broadcast_to(m, (batch, num_tokens, m.shape[-1])) for _, _, m in blocks], axis=-1
    )[:, None]  # [B, 1, K, L + K]
    return jax.nn.dot_product_attention(
        query, keys, values, mask=mask,
        implementation=None if implementation == "xla" else implementation,
    )  # fmt: skip
