"""Grouped-query attention of K new queries over the cache and themselves, two ways.

``attend`` is the plain einsum path: the cache and the K new keys are two blocks under one
softmax, so the cache is read in place and never copied. ``attend_fused`` hands one
concatenated key/value sequence and a boolean mask to ``jax.nn.dot_product_attention``, which
XLA (``implementation=None``) or cuDNN (``'cudnn'``) may run as a single fused kernel; that
costs a copy of the layer's cache slice per step (L * Nkv * H values, small next to the
weights at batch 1) and pays off where the launch count, not bytes, sets the step time.

Both compute softmax(q.k / sqrt(H)) v with float32 logits and softmax, probabilities cast to
the value dtype, and query head h = j * G + g reading key/value head j (HF's repeat_kv).

``attend_blocked`` is for prefill chunks: it reads the cache in key blocks of K positions, only
as many as lie below the rows' lengths, under an online softmax (a running max and sum, as in
flash attention). A chunk at offset O costs O * K scores instead of L * K, and holds K * K per
head at a time, so a prompt of P tokens costs ~P^2 / 2 rather than P * L.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

Block = tuple[jax.Array, jax.Array, jax.Array]  # keys, values [B, L, Nkv, H], mask [B, K|1, L]

ATTENTION_IMPLEMENTATIONS = ("einsum", "xla", "cudnn", "pallas")  # pallas: pallas_attention.py
PALLAS = "pallas"
BLOCKED = "blocked"  # not a config choice: what ``LlamaLM.prefill`` runs on every backend


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


def attend_blocked(
    query: jax.Array,
    keys: jax.Array,
    values: jax.Array,
    cache: tuple[jax.Array, jax.Array],
    cache_mask: jax.Array,
) -> jax.Array:
    """``attend(query, [(*cache, cache_mask), (keys, values, causal)])``, the cache read in blocks.

    query [B, K, N, H]; the K new keys and values [B, K, Nkv, H]; the cache's [B, L, Nkv, H];
    cache_mask [B, 1, L] true below each row's length (a prefix). Blocks of K cache positions
    start at 0, K, 2K...; only those below the longest row's length are read, and a block that
    would run past L is read from L - K with the positions before its start masked out.
    """
    batch, num_tokens, num_heads, head_dim = query.shape
    num_kv_heads = keys.shape[2]
    query = query.reshape(batch, num_tokens, num_kv_heads, num_heads // num_kv_heads, head_dim)

    def scores(block_keys, mask):  # [B, Lb, Nkv, H], [B, K or 1, Lb] -> [B, Nkv, G, K, Lb]
        block_scores = jnp.einsum(
            "bkjgh,bljh->bjgkl", query, block_keys, preferred_element_type=jnp.float32
        ) / math.sqrt(head_dim)
        return jnp.where(mask[:, None, None], block_scores, jnp.finfo(jnp.float32).min)

    def weighted(probs, block_values):  # -> [B, Nkv, G, K, H] float32
        return jnp.einsum(
            "bjgkl,bljh->bjgkh",
            probs.astype(block_values.dtype),
            block_values,
            preferred_element_type=jnp.float32,
        )

    # The new block first: each query sees itself, so the running max is finite from the start
    # and a cache block masked out entirely adds exp(min - max) = 0.
    causal = jnp.tril(jnp.ones((num_tokens, num_tokens), dtype=bool))[None]  # [1, K, K]
    block_scores = scores(keys, causal)
    running_max = jnp.max(block_scores, axis=-1, keepdims=True)  # [B, Nkv, G, K, 1]
    probs = jnp.exp(block_scores - running_max)
    carry = (running_max, jnp.sum(probs, axis=-1, keepdims=True), weighted(probs, values))

    cache_keys, cache_values = cache
    length = cache_keys.shape[1]
    block = min(num_tokens, length)
    limit = jnp.max(jnp.sum(cache_mask[:, 0], axis=-1))  # the longest row's length
    num_blocks = (limit + block - 1) // block

    def read_block(j, carry):
        running_max, total, out = carry
        begin = j * block
        start = jnp.minimum(begin, length - block)  # a clipped block's positions stay right
        block_keys = jax.lax.dynamic_slice_in_dim(cache_keys, start, block, axis=1)
        block_values = jax.lax.dynamic_slice_in_dim(cache_values, start, block, axis=1)
        mask = jax.lax.dynamic_slice_in_dim(cache_mask, start, block, axis=2)
        mask &= (start + jnp.arange(block)) >= begin  # [B, 1, Lb]
        block_scores = scores(block_keys, mask)
        new_max = jnp.maximum(running_max, jnp.max(block_scores, axis=-1, keepdims=True))
        rescale = jnp.exp(running_max - new_max)
        probs = jnp.exp(block_scores - new_max)
        total = total * rescale + jnp.sum(probs, axis=-1, keepdims=True)
        return new_max, total, out * rescale + weighted(probs, block_values)

    _, total, out = jax.lax.fori_loop(0, num_blocks, read_block, carry)
    out = jnp.moveaxis(out / total, 3, 1)  # [B, K, Nkv, G, H]
    return out.reshape(batch, num_tokens, num_heads, head_dim).astype(query.dtype)
