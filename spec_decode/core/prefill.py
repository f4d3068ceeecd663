"""Prefill in bounded chunks: a long prompt written into the cache C tokens per call.

One ``extend`` over a P-token prompt holds [K, L + K] attention scores per head and layer;
chunks of at most C tokens hold [C, L + C] at most, and with a model whose ``prefill`` attends
only to the positions written so far (the Llama model's does) the work is ~P^2 / 2, not P * L.

The chunks are one ``fori_loop`` over a C-token body, so compile time does not grow with P.
The last chunk is not padded: it ends at the prompt's end and starts C tokens before it,
rewriting the positions it overlaps with what they already held. With W = 10, C = 4:

    chunk   starts at   writes positions
    0       0           0 1 2 3
    1       4           4 5 6 7
    2       6 (= W - C)     6 7 8 9     (6 and 7 again, the same keys and values)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from spec_decode.core import contract
from spec_decode.core.contract import Cache, LanguageModel, Params, rollback

PREFILL_CHUNK = 512  # C: tokens per prefill call


def chunked_prefill(
    model: LanguageModel,
    params: Params,
    tokens: jax.Array,
    cache: Cache,
    chunk: int | None = None,
) -> Cache:
    """The cache after ``contract.prefill(model, params, tokens [B, W], cache)``, C at a time
    (``chunk``; default ``PREFILL_CHUNK``, read at each call).

    Each row grows by W from its own length; a row's padding is written like its tokens, for
    the caller to roll back.
    """
    chunk = PREFILL_CHUNK if chunk is None else chunk
    width = tokens.shape[1]
    if width <= chunk:
        return contract.prefill(model, params, tokens, cache)
    start = cache.lengths  # [B]
    num_chunks = -(-width // chunk)

    def body(i, cache):
        offset = jnp.minimum(i * chunk, width - chunk)
        piece = jax.lax.dynamic_slice_in_dim(tokens, offset, chunk, axis=1)  # [B, C]
        return contract.prefill(model, params, piece, rollback(cache, start + offset))

    return jax.lax.fori_loop(0, num_chunks, body, cache)
