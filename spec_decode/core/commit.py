"""Committing a round: emit the kept tokens, stop finished rows, roll both caches back."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from spec_decode.core.contract import rollback
from spec_decode.core.state import DecodeState


def commit_round(
    state: DecodeState,
    num_accepted: jax.Array,  # [B] int32 in 0..K: n, the drafts kept
    next_token: jax.Array,  # [B] int32: t, recovered (n < K) or bonus (n == K)
    draft_tokens: jax.Array,  # [B, K] int32: x_1 .. x_K (K = 0 for an autoregressive round)
    *,
    max_new_tokens: int,
    eos_id: int | None,
    rereads: bool = False,
) -> DecodeState:
    """Emit x_1..x_n, t per active row, stop rows at EOS / max_new_tokens, roll caches back.

    Called after verification: the target cache has grown by K + 1 and the draft cache by
    num_pending + K - 1 for every row, active or not. This sets the lengths the cache invariant
    asks for (``contract.rollback``: lengths only, nothing recomputed), and frozen rows go back
    to where they were. Worked example, K = 3, eos_id = 2, max_new_tokens = 6:

        row | generated | x_1 x_2 x_3 | n | t | emitted    | why                  | pending
         0  |     1     |  5   7   9  | 3 | 4 | 5 7 9 4    | bonus token          | [9, 4]
         1  |     1     |  5   2   9  | 3 | 4 | 5 2        | cut after EOS        | [9, 4]
         2  |     4     |  5   7   9  | 3 | 4 | 5 7        | max_new_tokens: 6    | [9, 4]
         3  |     2     |  8   6   6  | 0 | 1 | 1          | recovered token      | [6, 1]

    Rows 1 and 2 are then done. Target lengths grow by n + 1 (row 0: 4, row 3: 1); the draft
    cache follows with one fewer when every draft was accepted (num_pending = 2: the draft never
    saw x_K, row 0), so ``pending[:, 0]`` is only read when ``num_pending == 2``.

    ``rereads`` (a draft that reads the target's features): the draft keeps only the positions
    its first call read with the target's features (through the round's first, t' at the
    target's length before), so next round it re-reads x_1..x_n and t with the verified ones:
    draft length = target length before + 1, num_pending = n + 1 (row 0: 4, row 3: 1).
    """
    batch, k = draft_tokens.shape
    active = ~state.done
    pos = jnp.arange(k + 1)
    block = jnp.concatenate([draft_tokens, next_token[:, None]], axis=1)  # [B, K+1]
    block = jnp.where(pos < num_accepted[:, None], block, next_token[:, None])
    emit = num_accepted + 1  # [B]
    stop = jnp.zeros((batch,), bool)
    if eos_id is not None:
        is_eos = (block == eos_id) & (pos < emit[:, None])
        stop = is_eos.any(axis=1)
        emit = jnp.where(stop, jnp.argmax(is_eos, axis=1) + 1, emit)
    emit = jnp.minimum(emit, max_new_tokens - state.num_generated)
    write = jax.vmap(lambda buf, blk, at: jax.lax.dynamic_update_slice(buf, blk, (at,)))
    written = write(state.tokens, block, state.num_generated)
    tokens = jnp.where(active[:, None], written, state.tokens)
    num_generated = state.num_generated + jnp.where(active, emit, 0)

    target_before = state.target_cache.lengths - (k + 1)
    target_lengths = jnp.where(active, target_before + num_accepted + 1, target_before)
    all_accepted = num_accepted == k
    if rereads:
        num_pending = jnp.where(active, num_accepted + 1, state.num_pending)
    else:
        num_pending = jnp.where(active, jnp.where(all_accepted, 2, 1), state.num_pending)
    pending = jnp.stack([draft_tokens[:, -1] if k else next_token, next_token], axis=1)
    pending = jnp.where(active[:, None], pending, state.pending)
    draft_cache = state.draft_cache
    if draft_cache is not None:
        draft_before = draft_cache.lengths - (state.num_pending + k - 1)
        draft_lengths = jnp.where(active, target_lengths - (num_pending - 1), draft_before)
        draft_cache = rollback(draft_cache, draft_lengths)
    per_round = jnp.where(active, num_accepted, -1)
    return state.replace(
        rounds=state.rounds + 1,
        tokens=tokens,
        num_generated=num_generated,
        done=state.done | (active & (stop | (num_generated >= max_new_tokens))),
        pending=pending,
        num_pending=num_pending,
        target_cache=rollback(state.target_cache, target_lengths),
        draft_cache=draft_cache,
        target_calls=state.target_calls + active,
        draft_calls=state.draft_calls + k * active,
        accepted_per_round=state.accepted_per_round.at[:, state.rounds].set(per_round),
        gamma_per_round=state.gamma_per_round.at[state.rounds].set(k),
    )
