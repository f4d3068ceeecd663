"""A bigram draft for large vocabularies: each context keeps only its m most likely next tokens.

A dense bigram table takes 4 V^2 bytes (SmolLM2, V = 49152: 9.7 GB). Here each previous token a
stores its top m next tokens with their exact bigram probabilities (those of ``BigramDraft`` with
the same smoothing) and spreads the rest of its mass over the other tokens in proportion to the
unigram:

    p(x | a) = P(a, x)                                         x among the m stored for a
             = r(a) * u(x) / (1 - sum_{y stored for a} u(y))   otherwise

where r(a) = 1 - sum_{y stored for a} P(a, y) and u is the add-k unigram. This is a proper
distribution for every a. With m = V every token is stored and the draft equals ``BigramDraft``;
a context never seen in the corpus stores the m most frequent tokens and is exactly the unigram.

params (``sparse_bigram_params_from_tokens``):
    "next_tokens"        [V, m] int32    the stored next tokens of each previous token
    "next_log_probs"     [V, m] float32  their log P(a, x)
    "unigram_log_probs"  [V]    float32  log u(x)
    "backoff_log_scale"  [V]    float32  log r(a) - log(1 - sum_{stored} u); -inf when r(a) = 0

Memory: 8 V m + 8 V bytes (V = 49152, m = 64: 25 MB). ``extend`` materialises logits [B, K, V]
by broadcasting the scaled unigram and scattering the m stored entries: O(B K (V + m)).

Which tokens are stored: the observed next tokens of a by count (ties to the lower id), then, if
a has fewer than m distinct successors, the globally most frequent tokens not yet stored.
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
from spec_decode.drafts.ngram import (
    DEFAULT_SMOOTHING,
    check_smoothing,
    count_ngrams,
    safe_log,
    unigram_probs,
)


def _stored_tokens(
    prev: np.ndarray, nxt: np.ndarray, unigram_counts: np.ndarray, top_m: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stored next tokens [V, m] of each previous token and their bigram counts [V, m]."""
    vocab = unigram_counts.shape[0]
    pairs, pair_counts = np.unique(prev * vocab + nxt, return_counts=True)
    pair_prev, pair_next = np.divmod(pairs, vocab)
    # Within each previous token: most frequent successor first, ties to the lower id.
    order = np.lexsort((pair_next, -pair_counts, pair_prev))
    pair_prev, pair_next, pair_counts = pair_prev[order], pair_next[order], pair_counts[order]
    rank = np.arange(pair_prev.size) - np.searchsorted(pair_prev, pair_prev, side="left")
    keep = rank < top_m

    tokens = np.zeros((vocab, top_m), np.int64)  # [V, m]
    counts = np.zeros((vocab, top_m), np.int64)  # [V, m]
    tokens[pair_prev[keep], rank[keep]] = pair_next[keep]
    counts[pair_prev[keep], rank[keep]] = pair_counts[keep]
    num_observed = np.bincount(pair_prev[keep], minlength=vocab)  # [V]

    # Fill the free slots with the most frequent tokens the row does not hold yet. A row holds at
    # most m tokens, so the first min(V, 2m) of the global ranking always have enough left.
    ranking = np.argsort(-unigram_counts, kind="stable")[: min(vocab, 2 * top_m)]
    tokens[num_observed == 0] = ranking[:top_m]
    for row in np.flatnonzero((num_observed > 0) & (num_observed < top_m)):
        held = tokens[row, : num_observed[row]]
        fresh = ranking[~np.isin(ranking, held)]
        tokens[row, num_observed[row] :] = fresh[: top_m - num_observed[row]]
    return tokens, counts


def sparse_bigram_params_from_tokens(
    sequences: Iterable[Sequence[int]],
    vocab_size: int,
    top_m: int,
    smoothing: float = DEFAULT_SMOOTHING,
) -> dict[str, jax.Array]:
    """Params of ``SparseBigramDraft`` (see the module docstring) from token sequences.

    Args:
      sequences: an iterable of 1-D integer token-id sequences.
      vocab_size: V; every id must be in [0, V).
      top_m: m, next tokens stored per previous token, 1 <= m <= V.
      smoothing: add-k constant k >= 0, as in ``ngram_params_from_tokens``.
    """
    check_int("vocab_size", vocab_size, 1)
    check_int("top_m", top_m, 1)
    if top_m > vocab_size:
        raise ValueError(f"top_m={top_m} is not allowed: it must be <= vocab_size={vocab_size}")
    check_smoothing(smoothing)
    unigram_counts, prev, nxt = count_ngrams(sequences, vocab_size)
    unigram = unigram_probs(unigram_counts, smoothing)  # [V]
    tokens, counts = _stored_tokens(prev, nxt, unigram_counts, top_m)  # [V, m] each

    k, num_free = smoothing, vocab_size - top_m
    context_counts = np.bincount(prev, minlength=vocab_size).astype(np.float64)  # [V]
    seen = context_counts > 0
    denominators = np.where(seen, context_counts + k * vocab_size, 1.0)  # [V]
    stored_probs = np.where(
        seen[:, None], (counts + k) / denominators[:, None], unigram[tokens]
    )  # [V, m]
    # Mass left for the unstored tokens, and the unigram mass of those tokens, both written as
    # sums over the unstored tokens of the counts so that no 1 - (sum of floats) goes negative.
    total = unigram_counts.sum() + k * vocab_size
    free_unigram = (total - (unigram_counts[tokens] + k).sum(axis=1)) / total  # [V]
    free_bigram = (context_counts - counts.sum(axis=1) + k * num_free) / denominators  # [V]
    remaining = np.where(seen, free_bigram, free_unigram)  # [V]
    if num_free == 0:
        remaining = np.zeros_like(remaining)
        free_unigram = np.zeros_like(free_unigram)
    usable = (remaining > 0) & (free_unigram > 0)
    scale = np.where(usable, remaining / np.where(usable, free_unigram, 1.0), 0.0)
    return {
        "next_tokens": jnp.asarray(tokens, jnp.int32),
        "next_log_probs": jnp.asarray(safe_log(stored_probs)),
        "unigram_log_probs": jnp.asarray(safe_log(unigram)),
        "backoff_log_scale": jnp.asarray(safe_log(scale)),
    }


@dataclasses.dataclass(frozen=True)
class SparseBigramDraft(ModelFreeDraft):
    """A bigram draft storing m next tokens per context plus a unigram backoff.

    params: see the module docstring (8 V m + 8 V bytes). Cache: ``LengthsCache`` (lengths [B]).
    """

    top_m: int

    def __post_init__(self):
        super().__post_init__()
        check_int("top_m", self.top_m, 1)
        if self.top_m > self.vocab_size:
            raise ValueError(
                f"top_m={self.top_m} is not allowed: it must be <= vocab_size={self.vocab_size}"
            )

    def extend(
        self, params: dict[str, jax.Array], tokens: jax.Array, cache: LengthsCache
    ) -> tuple[jax.Array, LengthsCache]:
        """Logits [B, K, V] (normalised log-probs given tokens[:, i]) and the cache grown by K."""
        self.check_tokens(tokens, cache)
        vocab, top_m = self.vocab_size, self.top_m
        check_param_shape("next_tokens", params["next_tokens"], (vocab, top_m))
        check_param_shape("next_log_probs", params["next_log_probs"], (vocab, top_m))
        check_param_shape("unigram_log_probs", params["unigram_log_probs"], (vocab,))
        check_param_shape("backoff_log_scale", params["backoff_log_scale"], (vocab,))

        unigram = params["unigram_log_probs"].astype(jnp.float32)  # [V]
        scale = params["backoff_log_scale"].astype(jnp.float32)[tokens]  # [B, K]
        backoff = unigram[None, None, :] + scale[..., None]  # [B, K, V]
        stored = params["next_tokens"][tokens]  # [B, K, m]
        stored_logits = params["next_log_probs"].astype(jnp.float32)[tokens]  # [B, K, m]
        logits = jnp.put_along_axis(backoff, stored, stored_logits, axis=-1, inplace=False)
        return logits, advance(cache, tokens)
