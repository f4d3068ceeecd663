"""Rotary grouped-query attention of K new tokens over the cache, one Triton kernel a layer.

At batch 1 a decode step on a GPU costs what its kernel launches cost (about 2 us each on an
H200), and XLA spends 5-6 of them a layer on attention alone: the rotary pass, the cache and
the new keys joined (twice), the scores, the softmax, the weighted values. This kernel, written
with Pallas (``jax.experimental.pallas``, lowered through Triton), does all of it in one: it
reads the layer's unrotated ``qkv`` projection, rotates the queries and the new keys, attends
to the cached positions below each row's length and causally to the new tokens, and writes the
output and the rotated keys (which the caller stores in the cache after the layer loop).

The cache is passed whole, [Lyr, B, L, Nkv, H], with the layer's index: a slice per layer would
be a copy per layer, two more launches.

One program per (row b, query head n), reading key/value head n // G. The K tokens are padded
to 16 rows, what Triton's matrix instructions take; the cache is read in blocks of 64 positions,
only those below the row's length, under a running max and sum (flash attention's online
softmax). The new tokens come first, so every row's max is finite from the start (each token
sees itself) and a block masked out entirely adds nothing.

Same numbers as ``attention.attend``: queries and keys rotated in float32 and cast to the
activation dtype, float32 scores and softmax, probabilities cast to the value dtype, float32
accumulation; float32 models multiply without TF32.

    out, keys = rotary_attention(qkv, sin, cos, cache_k, cache_v, layer, lengths,
                                 num_heads=9, num_kv_heads=3)
    # qkv [B, K, N + 2 Nkv, H]; sin, cos [B, K, H/2]; out [B, K, N, H]; keys [B, K, Nkv, H]
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

ROWS = 16  # tokens per program, padded: the smallest M of Triton's dot
MAX_TOKENS = ROWS  # longer extends (prefill chunks) take the XLA path
BLOCK = 64  # cache positions per step of the loop


def supported(num_tokens: int, head_dim: int) -> bool:
    """Whether an extend of ``num_tokens`` with this head size runs here (else XLA's path)."""
    return num_tokens <= MAX_TOKENS and head_dim >= 32 and head_dim & (head_dim - 1) == 0


def rotary_attention(
    qkv: jax.Array,
    sin: jax.Array,
    cos: jax.Array,
    cache_k: jax.Array,
    cache_v: jax.Array,
    layer: jax.Array,
    lengths: jax.Array,
    *,
    num_heads: int,
    num_kv_heads: int,
    interpret: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """Attention of the K tokens of ``qkv`` [B, K, N + 2 Nkv, H] (query, key, value heads,
    unrotated) at positions lengths + 0..K-1, over cache_k/cache_v [Lyr, B, L, Nkv, H] of
    ``layer`` below ``lengths`` [B] and over themselves, causally.

    sin, cos [B, K, H/2] float32 (``layers.rotary_table`` without its head axis). Returns the
    output [B, K, N, H] and the rotated new keys [B, K, Nkv, H], both in qkv's dtype.
    ``interpret``: run the kernel as plain JAX (CPUs; what the tests check).
    """
    from jax.experimental import pallas as pl  # only GPU runs and tests import Pallas

    batch, num_tokens, _, head_dim = qkv.shape
    if not supported(num_tokens, head_dim):
        raise ValueError(
            f"num_tokens={num_tokens}, head_dim={head_dim} is not allowed here: the kernel takes "
            f"at most {MAX_TOKENS} tokens and a head size that is a power of 2 >= 32"
        )
    kernel = functools.partial(
        _kernel,
        num_tokens=num_tokens,
        num_heads=num_heads,
        num_kv_heads=num_kv_heads,
        precision=jax.lax.Precision.HIGHEST if qkv.dtype == jnp.float32 else None,
    )
    out_shape = (
        jax.ShapeDtypeStruct((batch, num_tokens, num_heads, head_dim), qkv.dtype),
        jax.ShapeDtypeStruct((batch, num_tokens, num_kv_heads, head_dim), qkv.dtype),
    )
    compiler_params = None
    if not interpret:
        from jax.experimental.pallas import triton as plgpu

        compiler_params = plgpu.CompilerParams(num_warps=4, num_stages=2)
    return pl.pallas_call(
        kernel,
        out_shape=out_shape,
        grid=(batch, num_heads),
        compiler_params=compiler_params,
        interpret=interpret,
        name="rotary_attention",
    )(
        jnp.reshape(layer, (1,)).astype(jnp.int32),
        lengths.astype(jnp.int32),
        qkv,
        sin.astype(jnp.float32),
        cos.astype(jnp.float32),
        cache_k,
        cache_v,
    )


def _kernel(
    layer_ref, lengths_ref, qkv_ref, sin_ref, cos_ref, k_ref, v_ref,  # inputs
    out_ref, keys_ref,  # outputs
    *, num_tokens: int, num_heads: int, num_kv_heads: int, precision,
):  # fmt: skip
    from jax.experimental import pallas as pl
    from jax.experimental.pallas import triton as plgpu

    b, n = pl.program_id(0), pl.program_id(1)
    j = n // (num_heads // num_kv_heads)  # this query head's key/value head
    head_dim = qkv_ref.shape[-1]
    half = head_dim // 2
    dtype = qkv_ref.dtype
    masked = jnp.finfo(jnp.float32).min
    rows = jnp.arange(ROWS)
    valid = (rows < num_tokens)[:, None]  # [R, 1]
    tokens, first, second = pl.ds(0, ROWS), pl.ds(0, half), pl.ds(half, half)

    def load(ref, mask):
        return plgpu.load(ref, mask=mask, other=0)

    sin = load(sin_ref.at[b, tokens, :], valid)  # [R, H/2]
    cos = load(cos_ref.at[b, tokens, :], valid)

    def rotated(head):  # "rotate half": the pairs are (i, i + H/2)
        x1 = load(qkv_ref.at[b, tokens, head, first], valid).astype(jnp.float32)
        x2 = load(qkv_ref.at[b, tokens, head, second], valid).astype(jnp.float32)
        return (x1 * cos - x2 * sin).astype(dtype), (x2 * cos + x1 * sin).astype(dtype)

    q1, q2 = rotated(n)  # [R, H/2] each
    k1, k2 = rotated(num_heads + j)
    scale = 1.0 / math.sqrt(head_dim)

    def dot(a, b, trans_b=False):
        return plgpu.dot(a, b, trans_b=trans_b, precision=precision)

    def scores(keys1, keys2):  # [Lb, H/2] halves -> [R, Lb] float32
        return (dot(q1, keys1, trans_b=True) + dot(q2, keys2, trans_b=True)) * scale

    # The new tokens: token i sees tokens 0..i (padding rows see token 0: finite, never stored).
    causal = (rows[None, :] <= rows[:, None]) & (rows < num_tokens)[None, :]  # [R, R]
    s = jnp.where(causal, scores(k1, k2), masked)
    running_max = jnp.max(s, axis=1)  # [R]
    probs = jnp.exp(s - running_max[:, None])
    total = jnp.sum(probs, axis=1)
    values = load(qkv_ref.at[b, tokens, num_heads + num_kv_heads + j, :], valid)  # [R, H]
    out = dot(probs.astype(dtype), values)  # [R, H] float32

    layer, length = layer_ref[0], lengths_ref[b]

    def cache_block(i, carry):
        running_max, total, out = carry
        start = i * BLOCK
        inside = (start + jnp.arange(BLOCK)) < length  # [Lb]
        positions = pl.ds(start, BLOCK)
        block_k1 = load(k_ref.at[layer, b, positions, j, first], inside[:, None])
        block_k2 = load(k_ref.at[layer, b, positions, j, second], inside[:, None])
        s = jnp.where(inside[None, :], scores(block_k1, block_k2), masked)
        new_max = jnp.maximum(running_max, jnp.max(s, axis=1))
        rescale = jnp.exp(running_max - new_max)
        probs = jnp.exp(s - new_max[:, None])
        block_v = load(v_ref.at[layer, b, positions, j, :], inside[:, None])  # [Lb, H]
        total = total * rescale + jnp.sum(probs, axis=1)
        out = out * rescale[:, None] + dot(probs.astype(block_v.dtype), block_v)
        return new_max, total, out

    num_blocks = (length + BLOCK - 1) // BLOCK
    _, total, out = jax.lax.fori_loop(0, num_blocks, cache_block, (running_max, total, out))
    plgpu.store(out_ref.at[b, tokens, n, :], (out / total[:, None]).astype(dtype), mask=valid)
    # The first query head of each group writes its key/value head's rotated keys.
    owner = valid & (n % (num_heads // num_kv_heads) == 0)
    plgpu.store(keys_ref.at[b, tokens, j, first], k1, mask=owner)
    plgpu.store(keys_ref.at[b, tokens, j, second], k2, mask=owner)
