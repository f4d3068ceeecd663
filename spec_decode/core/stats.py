"""Statistics of a decode, computed once from the per-row record in ``DecodeResult``.

The paper's alpha is the probability that a drafted token is accepted, given that it is
examined. A round examines drafts until the first rejection, so alpha is estimated as

    alpha = accepted / examined,    examined = accepted + rejections,

rejections being the rounds that accepted fewer drafts than they made (with a run-time gamma,
each round's own count: ``gamma_per_round``). The fraction accepted / drafted is smaller:
drafts after a rejection are never examined. With no draft, or before any draft was examined,
alpha is None. (1 - alpha^(gamma+1)) / (1 - alpha) then predicts the
tokens per target call.

Worked example, gamma = 3, one row, three rounds:

    round | accepted | rejection? | examined
      0   |    3     |    no      |    3
      1   |    1     |    yes     |    2
      2   |    0     |    yes     |    1
    accepted 4, examined 6: alpha = 0.67; histogram over 0..3 accepted = [1, 1, 0, 1].
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class RowCounts(NamedTuple):
    """Per-row counts, arrays [B] (histogram [B, gamma + 1])."""

    generated_tokens: jax.Array
    target_calls: jax.Array
    draft_calls: jax.Array
    rounds: jax.Array
    drafted_tokens: jax.Array  # drafts proposed (verified), summed over the row's rounds
    accepted_tokens: jax.Array
    examined_drafts: jax.Array
    histogram: jax.Array  # [B, gamma + 1]: rounds that accepted 0, 1, .., gamma drafts
    rounds_per_gamma: jax.Array  # [B, gamma + 1]: rounds that made 0, 1, .., gamma drafts


def row_counts(result) -> RowCounts:
    """Counts of every row of a ``DecodeResult``, traced or concrete."""
    per_round = jnp.asarray(result.accepted_per_round)  # [B, R], -1 = no round
    drafts = jnp.asarray(result.gamma_per_round)[None, :]  # [1, R]
    taken = per_round >= 0
    accepted = jnp.sum(jnp.where(taken, per_round, 0), axis=1)
    rejections = jnp.sum(taken & (per_round < drafts), axis=1)
    buckets = jnp.arange(result.gamma + 1)
    histogram = jnp.sum(per_round[:, :, None] == buckets, axis=1)  # [B, gamma + 1]
    made = taken[:, :, None] & (drafts[:, :, None] == buckets)  # [B, R, gamma + 1]
    return RowCounts(
        generated_tokens=jnp.asarray(result.lengths),
        target_calls=jnp.asarray(result.target_calls),
        draft_calls=jnp.asarray(result.draft_calls),
        rounds=jnp.sum(taken, axis=1),
        drafted_tokens=jnp.sum(jnp.where(taken, drafts, 0), axis=1),
        accepted_tokens=accepted,
        examined_drafts=accepted + rejections,
        histogram=histogram.astype(jnp.int32),
        rounds_per_gamma=jnp.sum(made, axis=1).astype(jnp.int32),
    )


def alpha(accepted: int, examined: int) -> float | None:
    """accepted / examined drafts; None when nothing was examined (no draft, or no round)."""
    return accepted / examined if examined else None


def summarize(results, row: int | None = None) -> dict[str, Any]:
    """Python numbers for the whole batch (``row=None``) or one row of a ``DecodeResult``.

    ``results`` may also be a sequence of results of one gamma (for example one per prompt):
    their rows are then counted together.
    """
    results = list(results) if isinstance(results, (list, tuple)) else [results]
    gammas = {result.gamma for result in results}
    if len(gammas) != 1:
        raise ValueError(f"results of gammas {sorted(gammas)} cannot be summarised together")
    per_row = [row_counts(result)._asdict() for result in results]
    counts = {name: np.concatenate([np.asarray(c[name]) for c in per_row]) for name in per_row[0]}
    if row is None:
        total = {name: value.sum(axis=0) for name, value in counts.items()}
    else:
        total = {name: value[row] for name, value in counts.items()}
    generated, calls = int(total["generated_tokens"]), int(total["target_calls"])
    accepted, examined = int(total["accepted_tokens"]), int(total["examined_drafts"])
    drafted = int(total["drafted_tokens"])
    return {
        "generated_tokens": generated,
        "target_calls": calls,
        "draft_calls": int(total["draft_calls"]),
        "rounds": int(total["rounds"]),
        "drafted_tokens": drafted,
        "accepted_tokens": accepted,
        "examined_drafts": examined,
        "alpha": alpha(accepted, examined),
        "accepted_per_drafted": accepted / drafted if drafted else None,
        "tokens_per_target_call": generated / calls if calls else None,
        "acceptance_histogram": [int(n) for n in total["histogram"]],
        "rounds_per_gamma": [int(n) for n in total["rounds_per_gamma"]],
    }
