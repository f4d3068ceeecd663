"""The loop state of the decoders and what they return."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from flax import struct


@struct.dataclass
class DecodeState:
    """Everything one ``lax.while_loop`` iteration (one round) reads and writes.

    ``autoregressive_decode`` uses the same state with no draft: a round is then one target
    call that emits one token. R = max_new_tokens bounds the number of rounds (each round of an
    active row emits at least one token). T_buf = max_new_tokens + K + 1 leaves room to write a
    whole round's block past a row's end without clipping.
    """

    step: jax.Array  # [] int32: rounds done so far (same for every row: rows run in lockstep)
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


@struct.dataclass
class DecodeResult:
    """Generated tokens and per-row statistics (arrays; ``summary`` turns them into numbers)."""

    tokens: jax.Array  # [B, max_new_tokens] int32, pad_id after each row's length
    lengths: jax.Array  # [B] int32: tokens generated (EOS included when emitted)
    target_calls: jax.Array  # [B] int32 (the prefill call is not counted)
    draft_calls: jax.Array  # [B] int32
    accepted_per_round: jax.Array  # [B, R] int32: -1 where the row took no round
    gamma: int = struct.field(pytree_node=False, default=0)

    def summary(self) -> dict[str, Any]:
        """Totals over the batch, with alpha estimated as the paper defines it.

        The paper's alpha is the probability that a drafted token is accepted, given that it is
        examined. A round examines drafts until the first rejection, so alpha is estimated as
        accepted / (accepted + rejections), rejections being the rounds with n < gamma. (The
        fraction accepted / drafted, also returned, is smaller: drafts after a rejection are
        never examined.) Then (1 - alpha^(gamma+1)) / (1 - alpha) predicts tokens per call.
        """
        rounds = np.asarray(self.accepted_per_round)
        taken = rounds[rounds >= 0]
        accepted = int(taken.sum())
        rejections = int((taken < self.gamma).sum())
        calls = int(np.asarray(self.target_calls).sum())
        generated = int(np.asarray(self.lengths).sum())
        examined = accepted + rejections
        return {
            "generated_tokens": generated,
            "target_calls": calls,
            "draft_calls": int(np.asarray(self.draft_calls).sum()),
            "accepted_tokens": accepted,
            "alpha": accepted / examined if examined else float("nan"),
            "accepted_per_drafted": accepted / (calls * self.gamma) if self.gamma else float("nan"),
            "tokens_per_target_call": generated / max(calls, 1),
        }
