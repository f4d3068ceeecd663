"""The target's features in the loop, for drafts that read them (``contract.reads_features``).

Such a draft (EAGLE-style) reads, next to the token at position p, the target's final hidden
state at p - 1. The loop keeps the target's hidden states in one buffer [B, L, D] indexed by
position, a value with the target cache's lengths: position p of row b is valid while
p < target_cache.lengths[b], and nothing is erased on rollback. The target writes it wherever
it writes its cache (prefill, verification, plain steps), so whatever the draft has not read
yet (the accepted tokens of the last round, a run of gamma-0 rounds) is there, and true, when
the draft reads it. With a plain draft the buffer is None and nothing here runs.

    position p             0     1     2    ...  Lt - 1    Lt (pending)
    buffer[b, p]           h_0   h_1   h_2  ...  h_Lt-1    garbage
    read with token p      0     h_0   h_1  ...  h_Lt-2    h_Lt-1

The buffer holds D values per position, e.g. 576 for SmolLM2 against the KV cache's 11,520.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from spec_decode.core.contract import Cache, LanguageModel, Params, rollback, write_at_lengths
from spec_decode.core.prefill import PREFILL_CHUNK


def empty_features(target: LanguageModel, params: Params, batch: int, length: int) -> jax.Array:
    """Zeros [B, L, D] in the dtype of the target's features (found abstractly, no compute)."""

    def probe():
        cache = target.init_cache(params, batch, 1)
        return target.prefill_features(params, jnp.zeros((batch, 1), jnp.int32), cache)[0]

    dtype = jax.eval_shape(probe).dtype
    return jnp.zeros((batch, length, target.feature_dim), dtype)


def write_features(buffer: jax.Array, new: jax.Array, lengths: jax.Array) -> jax.Array:
    """Write new [B, K, D] into buffer [B, L, D] at positions lengths[b].. of row b."""
    return write_at_lengths(buffer[None], new[None], lengths)[0]


def read_before(buffer: jax.Array, positions: jax.Array) -> jax.Array:
    """The features a draft reads with the tokens at positions [B, C]: the buffer at each
    position - 1, zeros at position 0 -> [B, C, D]."""
    before = positions - 1
    index = jnp.clip(before, 0, buffer.shape[1] - 1)[..., None]  # [B, C, 1]
    read = jnp.take_along_axis(buffer, index, axis=1)  # [B, C, D]
    return jnp.where(before[..., None] >= 0, read, jnp.zeros((), buffer.dtype))


def feature_prefill(
    target: LanguageModel,
    target_params: Params,
    draft: LanguageModel,
    draft_params: Params,
    tokens: jax.Array,  # [B, W] int32
    target_cache: Cache,
    draft_cache: Cache,
    features: jax.Array,  # [B, L, D]
    chunk: int | None = None,
) -> tuple[Cache, Cache, jax.Array]:
    """Both caches and the buffer after tokens [B, W], C tokens per call (as ``chunked_prefill``).

    Each chunk goes through the target (``prefill_features``, its hidden states written to the
    buffer), then through the draft over the same positions, reading the buffer one position
    back, so the draft's cache is made from the target's true features. Both caches start at
    the same lengths; a row's padding is written like its tokens, for the caller to roll back.
    """
    chunk = min(PREFILL_CHUNK if chunk is None else chunk, tokens.shape[1])
    width = tokens.shape[1]
    start = target_cache.lengths  # [B]

    def body(i, carry):
        target_cache, draft_cache, features = carry
        offset = jnp.minimum(i * chunk, width - chunk)
        piece = jax.lax.dynamic_slice_in_dim(tokens, offset, chunk, axis=1)  # [B, C]
        at = start + offset
        hidden, target_cache = target.prefill_features(
            target_params, piece, rollback(target_cache, at)
        )  # [B, C, D]
        features = write_features(features, hidden, at)
        read = read_before(features, at[:, None] + jnp.arange(chunk))  # [B, C, D]
        _, _, draft_cache = draft.extend_conditioned(
            draft_params, piece, read, rollback(draft_cache, at)
        )
        return target_cache, draft_cache, features

    carry = (target_cache, draft_cache, features)
    num_chunks = -(-width // chunk)
    if num_chunks == 1:
        return body(0, carry)
    return jax.lax.fori_loop(0, num_chunks, body, carry)
