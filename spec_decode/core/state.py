"""The loop state of the decoder and what it returns."""

from __future__ import annotations

from typing import Any

import jax
from flax import struct

from spec_decode.core import stats


@struct.dataclass
class DecodeState:
    """Everything one ``lax.while_loop`` iteration (one round) reads and writes.

    The autoregressive baseline uses the same state with no draft: a round is then one target
    call that emits one token. R = max_new_tokens bounds the number of rounds (each round of an
    active row emits at least one token). T_buf = max_new_tokens + K + 1 leaves room to write a
    whole round's block past a row's end without clipping.
    """

    rounds: jax.Array  # [] int32: rounds done so far (same for every row: rows run in lockstep)
    keys: jax.Array  # [B] typed keys, one per row; round r uses fold_in(keys[b], r)
    tokens: jax.Array  # [B, T_buf] int32: generated tokens; only [:num_generated] is meaningful
    num_generated: jax.Array  # [B] int32
    done: jax.Array  # [B] bool: EOS emitted or max_new_tokens reached; the row is then frozen
    # pending[b, 1] is the newest committed token: it is in neither cache yet. pending[b, 0] is
    # x_gamma when the previous round accepted every draft (the draft has not seen it).
    pending: jax.Array  # [B, 2] int32
    num_pending: jax.Array  # [B] int32 in {1, 2}: tokens not yet in the draft cache
    target_cache: Any  # target cache: lengths == prompt + generated - 1
    draft_cache: Any  # draft cache (None without a draft): lengths == target's - (num_pending - 1)
    target_calls: jax.Array  # [B] int32: target calls made while the row was active
    draft_calls: jax.Array  # [B] int32: draft calls made while the row was active
    accepted_per_round: jax.Array  # [B, R] int32: drafts accepted in each round; -1 = no round
    gamma_per_round: jax.Array  # [R] int32: drafts of each round (one for all rows); -1 = none
    last_prompt: jax.Array  # [B] int32: each prompt's last token (the draft's catch-up reads it)
    # Only for a draft that reads the target's features (``core/features.py``; else None): the
    # target's hidden state at every position below target_cache.lengths. Such a draft's cache
    # holds only positions it read with these (true) features, so num_pending is then in
    # 1..K+1: the last round's accepted tokens and t are re-read with them in the next round.
    features: Any  # [B, L, D] or None


@struct.dataclass
class DecodeResult:
    """Generated tokens and the per-row record of every round: the one source of statistics.

    ``summary()`` gives the batch totals and ``row_summary(b)`` one row's, both from
    ``spec_decode.core.stats`` (alpha as the paper defines it, the acceptance histogram).
    """

    tokens: jax.Array  # [B, max_new_tokens] int32, pad_id after each row's length
    lengths: jax.Array  # [B] int32: tokens generated (EOS included when emitted)
    target_calls: jax.Array  # [B] int32 (the prefill call is not counted)
    draft_calls: jax.Array  # [B] int32
    accepted_per_round: jax.Array  # [B, R] int32: -1 where the row took no round
    gamma_per_round: jax.Array  # [R] int32: drafts of each round; -1 after the last round
    gamma: int = struct.field(pytree_node=False, default=0)  # the most drafts a round may make

    def row_counts(self) -> stats.RowCounts:
        """Per-row counts [B] (and the histogram [B, gamma + 1]); works inside ``jax.jit``."""
        return stats.row_counts(self)

    def summary(self) -> dict[str, Any]:
        """Totals over the batch as Python numbers (``stats.summarize``)."""
        return stats.summarize(self)

    def row_summary(self, row: int) -> dict[str, Any]:
        """The same figures for one row."""
        return stats.summarize(self, row)
