"""Prompt lookup: predict by copying what followed the last occurrence of the current suffix.

For the position after token t_p (the history of the row is t_0 .. t_p), take the longest n in
[min_ngram, max_ngram] for which the suffix t_{p-n+1} .. t_p occurred earlier, ending at some
e < p; among those occurrences take the most recent (largest e), and predict t_{e+1}. The draft
is a one-hot distribution: logit 0 at the predicted token, -inf elsewhere.

Worked example (max_ngram=3, min_ngram=1), history of one row:

    position  0  1  2  3  4  5  6  7  8
    token     a  b  c  d  a  b  e  a  b

    predict after position 8: the 3-gram "e a b" never occurred before; the 2-gram "a b" ends at
    e = 1 and e = 5; the most recent is e = 5, so the prediction is t_6 = "e". After position 3
    ("d", seen nowhere before) the prediction is "d" itself (no match, see below).

When no suffix of length >= min_ngram occurred before, the draft predicts t_p again (repeat the
last token). That is a valid one-hot and costs nothing; a wrong guess is simply rejected by the
target, as any other wrong guess.

Cache: the token history [B, L] and lengths [B]. ``extend`` writes the K new tokens at each
row's end, then scores every earlier end position for each of the K queries at once:
O(B K L max_ngram) comparisons, no loop over positions (only over the static n range).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct
from jax.sharding import PartitionSpec

from spec_decode.core.contract import check_tokens
from spec_decode.drafts._common import ModelFreeDraft, check_int


@struct.dataclass
class PromptLookupCache:
    """Per-row token history; positions at or beyond ``lengths[b]`` are garbage."""

    tokens: jax.Array  # [B, L] int32
    lengths: jax.Array  # [B] int32


def lookup_next(history: jax.Array, positions: jax.Array, min_ngram: int, max_ngram: int):
    """The prediction after each query position: int32 [B, K].

    Args:
      history: [B, L] int32 token ids (>= 0); only positions <= a row's queries are read.
      positions: [B, K] int32 index p of the last token of each query's context.
      min_ngram, max_ngram: the static range of suffix lengths n.
    """
    length = history.shape[1]
    ends = jnp.arange(length, dtype=jnp.int32)  # [L] candidate end e of an earlier occurrence
    # match[b, i, e]: the n-gram ending at e equals the n-gram ending at positions[b, i]; grown
    # one token further back per n, so after step n it is the n-gram match.
    match = ends[None, None, :] < positions[..., None]  # [B, K, L]
    best_end = jnp.full(positions.shape, -1, jnp.int32)  # [B, K]; -1: no match yet
    for back in range(max_ngram):
        # shifted[b, e] = history[b, e - back]; -1 before the start, so it never matches a token.
        shifted = jnp.pad(history, ((0, 0), (back, 0)), constant_values=-1)[:, :length]
        query_at = positions - back  # [B, K]
        query = jnp.take_along_axis(history, jnp.maximum(query_at, 0), axis=1)
        # A suffix that would start before the row's first token matches nothing (-2).
        query = jnp.where(query_at >= 0, query, -2)  # [B, K]
        match = match & (shifted[:, None, :] == query[..., None])  # [B, K, L]
        if back + 1 >= min_ngram:
            last = jnp.max(jnp.where(match, ends, -1), axis=-1)  # [B, K] most recent end
            best_end = jnp.where(last >= 0, last, best_end)  # longer n overrides shorter
    followers = jnp.take_along_axis(history, best_end + 1, axis=1)  # [B, K]; valid if matched
    current = jnp.take_along_axis(history, positions, axis=1)  # [B, K]
    return jnp.where(best_end >= 0, followers, current).astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class PromptLookupDraft(ModelFreeDraft):
    """A model-free draft that copies continuations of n-grams already in the row's history.

    Attributes:
      vocab_size: V, the width of the one-hot logits.
      max_ngram: longest suffix tried (tried first).
      min_ngram: shortest suffix accepted as a match, 1 <= min_ngram <= max_ngram.

    params: unused (pass None or {}).
    """

    max_ngram: int = 3
    min_ngram: int = 1

    def __post_init__(self):
        super().__post_init__()
        check_int("min_ngram", self.min_ngram, 1)
        check_int("max_ngram", self.max_ngram, 1)
        if self.max_ngram < self.min_ngram:
            raise ValueError(
                f"max_ngram={self.max_ngram} is not allowed: it must be >= "
                f"min_ngram={self.min_ngram}"
            )

    def init_cache(self, params, batch_size: int, max_length: int) -> PromptLookupCache:
        """Empty history with room for ``max_length`` tokens per row."""
        del params  # the draft has none
        check_int("batch_size", batch_size, 1)
        check_int("max_length", max_length, 1)
        return PromptLookupCache(
            tokens=jnp.zeros((batch_size, max_length), jnp.int32),
            lengths=jnp.zeros((batch_size,), jnp.int32),
        )

    def cache_logical_axes(self) -> PromptLookupCache:
        """Rows and positions of the history, rows of the lengths."""
        return PromptLookupCache(
            tokens=PartitionSpec("cache_batch", "cache_sequence"),
            lengths=PartitionSpec("cache_batch"),
        )

    def extend(
        self, params, tokens: jax.Array, cache: PromptLookupCache
    ) -> tuple[jax.Array, PromptLookupCache]:
        """Append tokens [B, K] to each row's history; one-hot logits [B, K, V] of the lookups."""
        del params
        # Against the history's length too: a write past its end would be clipped and shifted.
        check_tokens(tokens, cache.lengths.shape[0], cache.tokens.shape[1])
        tokens = tokens.astype(jnp.int32)
        write = jax.vmap(lambda row, new, start: jax.lax.dynamic_update_slice(row, new, (start,)))
        history = write(cache.tokens, tokens, cache.lengths)  # [B, L]
        positions = cache.lengths[:, None] + jnp.arange(tokens.shape[1], dtype=jnp.int32)
        predicted = lookup_next(history, positions, self.min_ngram, self.max_ngram)  # [B, K]
        is_predicted = jnp.arange(self.vocab_size) == predicted[..., None]  # [B, K, V]
        logits = jnp.where(is_predicted, 0.0, -jnp.inf).astype(jnp.float32)
        new_cache = cache.replace(tokens=history, lengths=cache.lengths + tokens.shape[1])
        return logits, new_cache
