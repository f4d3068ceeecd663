"""Draft and verify: the two model-calling halves of one speculative round.

Both are pure functions of (model, params, cache, tokens, keys) and return a new cache. The
decoding core reaches models only through ``extend`` (see ``spec_decode.core.contract``), and
drafts that read the target's features through ``extend_conditioned``
(``conditioned_draft_block``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from spec_decode.core.contract import Cache, FeatureDraft, LanguageModel, Params, rollback
from spec_decode.core.sampling import SamplingConfig, adjusted_probs, sample_from


def draft_block(
    draft: LanguageModel,
    params: Params,
    cache: Cache,
    pending: jax.Array,  # [B, 2] int32: tokens committed but not yet in the draft cache
    num_pending: jax.Array,  # [B] int32 in {1, 2}: how many of pending[b] (the last ones) count
    keys: jax.Array,  # [B] keys, one per row
    *,
    gamma: int,
    sampling: SamplingConfig,
    return_probs: bool = True,
) -> tuple[jax.Array, jax.Array | None, Cache]:
    """Draw gamma draft tokens x_1..x_gamma and their adjusted draft distributions q_1..q_gamma.

    This is a whole block of gamma draft calls (``draft_step`` is its former name).

    The newest committed token ``pending[b, 1]`` is never in the draft cache yet. After a round
    in which all gamma drafts were accepted, the draft has not seen x_gamma either, so that row
    has two pending tokens ``[x_gamma, t]``. The first draft call therefore always extends by two
    positions: ``[x_gamma, t]`` when two are pending, ``[t, t]`` when one is (the duplicate is
    written one position past the row's end and discarded by a rollback). Two positions cost
    about as much as one in memory-bound decoding, and no extra draft call is spent on catch-up.

        num_pending | extended tokens | q_1 read from | draft length after
             2      |  [x_gamma, t]   |  position 1   |  L + 2 + (gamma - 1)
             1      |  [t, t]         |  position 0   |  L + 1 + (gamma - 1)

    With greedy sampling the tokens are the argmax of the logits (what sampling the one-hot
    q_i gives), and ``return_probs=False`` skips building q (``draft_probs`` is then None).

    Returns:
      draft_tokens: int32 [B, K] with K = gamma.
      draft_probs: float32 [B, K, V] (None with ``return_probs=False`` and greedy sampling).
      cache: the draft cache, holding the pending tokens and x_1..x_{gamma-1}.
    """
    batch = pending.shape[0]
    two_pending = (num_pending == 2)[:, None]  # [B, 1]
    first_tokens = jnp.where(two_pending, pending, pending[:, 1:].repeat(2, axis=1))  # [B, 2]
    lengths_before = cache.lengths
    logits, cache = draft.extend(params, first_tokens, cache)  # [B, 2, V]
    logits = logits[jnp.arange(batch), num_pending - 1]  # [B, V]
    cache = rollback(cache, lengths_before + num_pending)

    def extend_one(token, cache):  # [B] -> logits [B, V]
        logits, cache = draft.extend(params, token[:, None], cache)  # [B, 1, V]
        return logits[:, 0], cache

    return _draw_block(extend_one, logits, cache, keys, gamma, sampling, return_probs)


def conditioned_draft_block(
    draft: FeatureDraft,
    params: Params,
    cache: Cache,
    tokens: jax.Array,  # [B, W] int32: the committed tokens from the draft's length on
    features: jax.Array,  # [B, W, D]: the target's features of the positions before them
    num_pending: jax.Array,  # [B] int32 in 1..W: how many of tokens[b] (the first ones) count
    keys: jax.Array,  # [B] keys, one per row
    *,
    gamma: int,
    sampling: SamplingConfig,
    return_probs: bool = True,
) -> tuple[jax.Array, jax.Array | None, Cache]:
    """``draft_block`` for a draft that reads the target's features (``contract.FeatureDraft``).

    The first call re-reads every committed position the draft has not read with the target's
    true features: the last round's accepted tokens and its newest token t, num_pending of
    them (W = gamma + 1 wide, the rest written past the row's end and rolled back). Each later
    call reads the draft's own predicted features of the position before, the only ones there
    are beyond the last verified position. Worked example, gamma = 3, the last round verified
    [t', x_1, x_2, x_3] from position Lt and accepted x_1 x_2, then drew t (so num_pending = 3
    and the draft's length is Lt + 1; h are the target's features, y the new drafts):

        call | tokens at Lt+1..  | features read       | q read from | draft length after
          1  | x_1 x_2 t  (pad)  | h_Lt h_Lt+1 h_Lt+2  | position 2  | Lt + 4 (rolled back)
          2  | y_1               | predicted at t      | position 0  | Lt + 5
          3  | y_2               | predicted at y_1    | position 0  | Lt + 6

    Returns draft_tokens [B, K], draft_probs [B, K, V] (None as in ``draft_block``) and the
    cache holding the pending tokens and y_1..y_{gamma-1}.
    """
    batch = tokens.shape[0]
    lengths_before = cache.lengths
    logits, predicted, cache = draft.extend_conditioned(params, tokens, features, cache)
    rows, last = jnp.arange(batch), num_pending - 1
    logits, feature = logits[rows, last], predicted[rows, last]  # [B, V], [B, D]
    cache = rollback(cache, lengths_before + num_pending)

    def extend_one(token, carry):  # [B] -> logits [B, V]
        feature, cache = carry
        logits, predicted, cache = draft.extend_conditioned(
            params, token[:, None], feature[:, None], cache
        )  # [B, 1, V], [B, 1, D]
        return logits[:, 0], (predicted[:, 0], cache)

    draft_tokens, draft_probs, (_, cache) = _draw_block(
        extend_one, logits, (feature, cache), keys, gamma, sampling, return_probs
    )
    return draft_tokens, draft_probs, cache


def _draw_block(extend_one, logits, carry, keys, gamma, sampling, return_probs):
    """Draw x_1 from the first call's logits [B, V], then x_2..x_gamma one call each."""
    fast_greedy = sampling.greedy and not return_probs
    step_keys = jax.vmap(lambda k: jax.random.split(k, gamma))(keys)  # [B, K]

    def draw(logits, key_column):
        if fast_greedy:
            return jnp.argmax(logits, axis=-1).astype(jnp.int32), None
        probs = adjusted_probs(logits, sampling)  # [B, V]
        return jax.vmap(sample_from)(key_column, probs), probs

    token, probs = draw(logits, step_keys[:, 0])

    def body(scan_carry, key_column):
        token, carry = scan_carry
        logits, carry = extend_one(token, carry)
        next_token, probs = draw(logits, key_column)
        return (next_token, carry), (next_token, probs)

    # gamma is static, so the draft calls are unrolled: no inner loop and its per-trip overhead
    # on a GPU, where a small draft's step is a few dozen microseconds.
    (_, carry), (tokens_rest, probs_rest) = jax.lax.scan(
        body, (token, carry), jnp.swapaxes(step_keys[:, 1:], 0, 1), unroll=True
    )  # [K-1, B], [K-1, B, V]
    draft_tokens = jnp.concatenate([token[:, None], jnp.swapaxes(tokens_rest, 0, 1)], axis=1)
    if fast_greedy:
        return draft_tokens, None, carry
    draft_probs = jnp.concatenate([probs[:, None], jnp.swapaxes(probs_rest, 0, 1)], axis=1)
    return draft_tokens, draft_probs, carry


def parallel_verify(
    target: LanguageModel,
    params: Params,
    cache: Cache,
    last_token: jax.Array,  # [B] int32: the newest committed token (not yet in the target cache)
    draft_tokens: jax.Array,  # [B, K] int32
    *,
    sampling: SamplingConfig,
) -> tuple[jax.Array, Cache]:
    """One target call over K + 1 positions: p_1 .. p_{K+1}, adjusted like the draft's q.

    p_i is the target's distribution after ``last_token, x_1 .. x_{i-1}``; p_{K+1} follows the
    whole draft and is what the extra token is drawn from when every draft is accepted.

    Returns target_probs float32 [B, K+1, V] and the cache extended by K + 1 positions.
    """
    tokens = jnp.concatenate([last_token[:, None], draft_tokens], axis=1)  # [B, K+1]
    logits, cache = target.extend(params, tokens, cache)  # [B, K+1, V]
    return adjusted_probs(logits, sampling), cache


# The former name: users import it.
draft_step = draft_block
