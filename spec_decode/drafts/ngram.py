"""Unigram and bigram drafts: count tables instead of a network (the paper's Table 3 baselines).

The params are log-probability tables built from token sequences (ideally text the target itself
generated, so the counts estimate the target's own distribution):

    unigram  {"log_probs": [V]}       p(x)          the context is ignored
    bigram   {"log_probs": [V, V]}    p(x | prev)   row = previous token

Smoothing is add-k with ``k = smoothing`` (default 0.01):

    p(x) = (c(x) + k) / (N + k V)
    p(x | a) = (c(a, x) + k) / (c(a) + k V)   if the corpus has a bigram starting with a,
             = p(x)                           otherwise (back off to the unigram)

so with k > 0 no token has probability 0. A context seen c(a) times gives k V / (c(a) + k V) of
its mass to smoothing (V = 32128, k = 0.01: about 321 pseudo-counts), so k is kept small. With
k = 0, unseen tokens get probability 0 (logit -inf); ``adjusted_probs`` and speculative
decoding handle that, and every row still has a finite entry.

The dense bigram table takes 4 V^2 bytes (V = 32128: 4.1 GB; V = 49152: 9.7 GB), and building it
another 8 V^2 bytes of host memory; for such vocabularies use ``SparseBigramDraft``
(``sparse_bigram.py``, 8 V m bytes).

The logits returned by ``extend`` are normalised log-probabilities (logsumexp 0), float32.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from spec_decode.drafts._common import (
    LengthsCache,
    ModelFreeDraft,
    advance,
    check_int,
    check_param_shape,
)

DEFAULT_SMOOTHING = 0.01


def count_ngrams(
    sequences: Iterable[Sequence[int]], vocab_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token counts [V] (int64) and the bigram pairs (previous [P], next [P]) of the sequences.

    Pairs never cross the boundary between two sequences.
    """
    check_int("vocab_size", vocab_size, 1)
    unigram = np.zeros((vocab_size,), np.int64)
    prev, nxt = [], []
    for index, sequence in enumerate(sequences):
        ids = np.asarray(sequence)
        if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
            raise ValueError(
                f"sequences[{index}] with shape={ids.shape} and dtype={ids.dtype} is not "
                "allowed: each sequence must be a 1-D sequence of integer token ids"
            )
        ids = ids.astype(np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
            raise ValueError(
                f"sequences[{index}] holds token ids in [{ids.min()}, {ids.max()}], which is "
                f"not allowed: ids must be in [0, vocab_size={vocab_size})"
            )
        unigram += np.bincount(ids, minlength=vocab_size)
        prev.append(ids[:-1])
        nxt.append(ids[1:])
    empty = np.zeros((0,), np.int64)
    return unigram, np.concatenate(prev or [empty]), np.concatenate(nxt or [empty])


def check_smoothing(smoothing: float) -> None:
    if not isinstance(smoothing, (int, float)) or isinstance(smoothing, bool) or smoothing < 0:
        raise ValueError(
            f"smoothing={smoothing!r} is not allowed: it must be a number >= 0 (add-k smoothing)"
        )


def unigram_probs(unigram_counts: np.ndarray, smoothing: float) -> np.ndarray:
    """Add-k unigram probabilities [V] in float64; an empty corpus needs smoothing > 0."""
    vocab = unigram_counts.shape[0]
    total = unigram_counts.sum() + smoothing * vocab
    if total == 0:
        raise ValueError(
            "sequences with no tokens and smoothing=0 are not allowed: there is nothing to count; "
            "pass some tokens or smoothing > 0 (an empty corpus then gives a uniform draft)"
        )
    return (unigram_counts + smoothing) / total


def safe_log(probs: np.ndarray) -> np.ndarray:
    """log in float32 with log(0) = -inf and no warning."""
    with np.errstate(divide="ignore"):
        return np.log(probs).astype(np.float32)


def ngram_params_from_tokens(
    sequences: Iterable[Sequence[int]],
    vocab_size: int,
    order: int = 2,
    smoothing: float = DEFAULT_SMOOTHING,
) -> dict[str, jax.Array]:
    """Count-based params: order 1 -> {"log_probs": [V]}, order 2 -> {"log_probs": [V, V]}.

    Args:
      sequences: an iterable of 1-D integer token-id sequences (lists, numpy or jax arrays).
      vocab_size: V; every id must be in [0, V).
      order: 1 for ``UnigramDraft``, 2 for ``BigramDraft`` (dense: 4 V^2 bytes).
      smoothing: add-k constant k >= 0 (see the module docstring).
    """
    if order not in (1, 2) or isinstance(order, bool):
        raise ValueError(f"order={order!r} is not allowed: it must be 1 (unigram) or 2 (bigram)")
    check_smoothing(smoothing)
    unigram_counts, prev, nxt = count_ngrams(sequences, vocab_size)
    unigram = unigram_probs(unigram_counts, smoothing)  # [V]
    if order == 1:
        return {"log_probs": jnp.asarray(safe_log(unigram))}
    counts = np.zeros((vocab_size, vocab_size), np.float64)  # [V, V]
    np.add.at(counts, (prev, nxt), 1.0)
    row_totals = counts.sum(axis=1)  # [V]
    seen = row_totals > 0
    # In place, so that building needs 8 V^2 bytes of host memory besides the result.
    counts += smoothing
    counts /= np.where(seen, row_totals + smoothing * vocab_size, 1.0)[:, None]
    counts[~seen] = unigram  # contexts never seen back off to the unigram
    with np.errstate(divide="ignore"):
        np.log(counts, out=counts)
    return {"log_probs": jnp.asarray(counts, jnp.float32)}


@dataclasses.dataclass(frozen=True)
class UnigramDraft(ModelFreeDraft):
    """p(next token) from token frequencies alone; the same logits at every position.

    params: {"log_probs": [V]} (``ngram_params_from_tokens(..., order=1)``).
    Cache: ``LengthsCache`` (lengths [B] only). ``extend`` costs O(B K V).
    """

    def extend(
        self, params: dict[str, jax.Array], tokens: jax.Array, cache: LengthsCache
    ) -> tuple[jax.Array, LengthsCache]:
        """Logits [B, K, V] (each row the unigram log-probs) and the cache grown by K."""
        batch, width = self.check_tokens(tokens, cache)
        check_param_shape("log_probs", params["log_probs"], (self.vocab_size,))
        log_probs = params["log_probs"].astype(jnp.float32)
        logits = jnp.broadcast_to(log_probs, (batch, width, self.vocab_size))  # [B, K, V]
        return logits, advance(cache, tokens)


@dataclasses.dataclass(frozen=True)
class BigramDraft(ModelFreeDraft):
    """p(next token | current token) from a dense [V, V] table; logits[b, i] = table[tokens[b, i]].

    params: {"log_probs": [V, V]} (``ngram_params_from_tokens(..., order=2)``), 4 V^2 bytes.
    Cache: ``LengthsCache`` (lengths [B] only): the context of position i is tokens[:, i] itself,
    so nothing from earlier calls is needed. ``extend`` costs O(B K V).
    """

    def extend(
        self, params: dict[str, jax.Array], tokens: jax.Array, cache: LengthsCache
    ) -> tuple[jax.Array, LengthsCache]:
        """Logits [B, K, V] = the table rows of tokens [B, K], and the cache grown by K."""
        self.check_tokens(tokens, cache)
        vocab = self.vocab_size
        check_param_shape("log_probs", params["log_probs"], (vocab, vocab))
        logits = params["log_probs"].astype(jnp.float32)[tokens]  # [B, K, V]
        return logits, advance(cache, tokens)
