"""The modified rejection step (paper Algorithm 1, steps 3-5)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from spec_decode.core.keys import row_keys
from spec_decode.core.sampling import sample_from
from spec_decode.core.validation import check_ids

# How far from 1 a distribution's sum may be: float32 softmax over a 50k vocabulary is off by
# ~1e-5; log-probabilities or unnormalised weights are off by far more.
SUM_TOLERANCE = 1e-3


def accept_reject(
    target_probs: jax.Array,  # [B, K+1, V] float32: p_1 .. p_{K+1}
    draft_probs: jax.Array,  # [B, K, V] float32: q_1 .. q_K
    draft_tokens: jax.Array,  # [B, K] int32: x_1 .. x_K, x_i drawn from q_i
    key: jax.Array,  # an int seed, one key, or [B] keys (one per row)
    *,
    check: bool = True,
) -> tuple[jax.Array, jax.Array]:
    """Keep a prefix of the draft and draw one more token so that the output follows p exactly.

    Per row, with uniforms r_i in [0, 1): x_i is accepted while r_i * q_i(x_i) < p_i(x_i), i.e.
    r_i < p_i(x_i) / q_i(x_i). The strict inequality matters: a drafted token with p_i(x_i) = 0
    is never accepted, even when r_i is exactly 0. ``num_accepted`` n is the number of leading
    accepted tokens. The next token is drawn from norm(max(0, p_{n+1} - q_{n+1})) when n < K,
    or from p_{K+1} when all K were accepted. If the residual has no mass (p = q up to rounding,
    where a rejection is all but impossible) the next token is drawn from p_{n+1}.

    Worked example, K = 3, one row:

        i | x_i | q_i(x_i) | p_i(x_i) | r_i  | r_i q < p ?
        1 |  7  |   0.50   |   0.60   | 0.90 | yes (p >= q always accepts)
        2 |  2  |   0.40   |   0.10   | 0.10 | yes (0.04 < 0.10)
        3 |  5  |   0.80   |   0.20   | 0.70 | no  (0.56 >= 0.20)  -> n = 2
        next token ~ norm(max(0, p_3 - q_3)); the round emits x_1, x_2, next (3 tokens).

    Checks: shapes, dtypes (float probabilities, integer ids) and the key's batch always; with
    ``check=True`` and concrete (not traced) inputs also the values: every probability finite
    and >= 0, every distribution summing to 1 within ``SUM_TOLERANCE``, every draft id in
    [0, V). Values traced by ``jax.jit`` (as in the decoder's round) skip the value checks on
    their own; ``check=False`` skips them for concrete inputs too (a hot Python loop).

    Returns:
      num_accepted: int32 [B] in 0..K.
      next_token: int32 [B].
    """
    target_probs, draft_probs, draft_tokens = (
        x if isinstance(x, jax.Array) else np.asarray(x)
        for x in (target_probs, draft_probs, draft_tokens)
    )
    _check_shapes(target_probs, draft_probs, draft_tokens)
    _check_dtypes(target_probs, draft_probs, draft_tokens)
    if check:
        _check_values(target_probs, draft_probs, draft_tokens)
    batch = draft_tokens.shape[0]
    keys = row_keys(key, batch)
    draft_tokens = jnp.asarray(draft_tokens, jnp.int32)
    target_probs = jnp.asarray(target_probs, jnp.float32)
    draft_probs = jnp.asarray(draft_probs, jnp.float32)
    return jax.vmap(_accept_reject_row)(target_probs, draft_probs, draft_tokens, keys)


def _check_dtypes(target_probs, draft_probs, draft_tokens) -> None:
    for name, probs in (("target_probs", target_probs), ("draft_probs", draft_probs)):
        if not jnp.issubdtype(probs.dtype, jnp.floating):
            raise ValueError(
                f"{name} with dtype={probs.dtype} is not allowed: it must hold float "
                "probabilities (e.g. spec_decode.adjusted_probs of the logits)"
            )
    if not jnp.issubdtype(draft_tokens.dtype, jnp.integer):
        raise ValueError(
            f"draft_tokens with dtype={draft_tokens.dtype} is not allowed: it must hold "
            "integer token ids"
        )


def _check_values(target_probs, draft_probs, draft_tokens) -> None:
    """Concrete values only: a traced array cannot be read, so it is left to the caller."""
    vocab = draft_probs.shape[-1]
    for name, probs in (("target_probs", target_probs), ("draft_probs", draft_probs)):
        if isinstance(probs, jax.core.Tracer):
            continue
        probs = np.asarray(probs, np.float64)
        bad = ~np.isfinite(probs) | (probs < 0)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{name}[{', '.join(map(str, where))}]={probs[where]} is not allowed: "
                "probabilities must be finite and >= 0 (log-probabilities are not accepted; "
                "pass jnp.exp of them)"
            )
        sums = probs.sum(-1)
        off = np.abs(sums - 1) > SUM_TOLERANCE
        if off.any():
            where = tuple(int(i) for i in np.argwhere(off)[0])
            raise ValueError(
                f"{name}[{', '.join(map(str, where))}] sums to {sums[where]:.6g}, which is not "
                f"allowed: each distribution over V={vocab} must sum to 1 within {SUM_TOLERANCE}"
            )
    if not isinstance(draft_tokens, jax.core.Tracer):
        why = "ids (V from draft_probs)"
        check_ids("draft_tokens", np.asarray(draft_tokens), vocab, why)


def _check_shapes(target_probs, draft_probs, draft_tokens) -> None:
    if draft_tokens.ndim != 2 or draft_tokens.shape[1] < 1:
        raise ValueError(
            f"draft_tokens with shape={draft_tokens.shape} is not allowed: it must be "
            "[B, K] with K >= 1"
        )
    batch, k = draft_tokens.shape
    vocab = draft_probs.shape[-1]
    if draft_probs.shape != (batch, k, vocab):
        raise ValueError(
            f"draft_probs with shape={draft_probs.shape} is not allowed: it must be "
            f"[B, K, V] with B={batch}, K={k} from draft_tokens"
        )
    if target_probs.shape != (batch, k + 1, vocab):
        raise ValueError(
            f"target_probs with shape={target_probs.shape} is not allowed: it must be "
            f"[B, K+1, V] = {(batch, k + 1, vocab)}"
        )


def _accept_reject_row(p, q, x, key):
    """One row: p [K+1, V], q [K, V], x [K], key -> (n, next_token)."""
    key_uniform, key_next = jax.random.split(key)
    r = jax.random.uniform(key_uniform, x.shape, dtype=jnp.float32)  # [K] in [0, 1)
    return accept_reject_given_uniforms(p, q, x, r, key_next)


def accept_reject_given_uniforms(p, q, x, r, key_next):
    """One row with its uniforms r [K] given (tests use it to pin r, e.g. to exactly 0)."""
    k = x.shape[0]
    p_x = jnp.take_along_axis(p[:k], x[:, None], axis=-1)[:, 0]  # [K]
    q_x = jnp.take_along_axis(q, x[:, None], axis=-1)[:, 0]  # [K]
    accepted = r * q_x < p_x  # [K]
    n = jnp.sum(jnp.cumprod(accepted.astype(jnp.int32)))  # leading run of acceptances
    p_next = p[n]  # [V]
    q_next = jnp.where(n < k, q[jnp.minimum(n, k - 1)], 0.0)  # [V]; q = 0 past the draft
    residual = jnp.maximum(p_next - q_next, 0.0)
    mass = jnp.sum(residual)
    residual = jnp.where(mass > 0, residual / jnp.where(mass > 0, mass, 1.0), p_next)
    return n.astype(jnp.int32), sample_from(key_next, residual)


def accept_greedy(
    target_logits: jax.Array,  # [B, K+1, V] (any float dtype)
    draft_tokens: jax.Array,  # [B, K] int32: the draft's argmax tokens
) -> tuple[jax.Array, jax.Array]:
    """``accept_reject`` for argmax sampling, without building one-hot distributions.

    With p_i and q_i one-hot, r * q_i(x_i) < p_i(x_i) holds exactly when x_i is the target's
    argmax, and the residual norm(max(0, p - q)) of a rejection is p itself: so n is the length
    of the leading run of x_i == argmax p_i, and the next token is argmax p_{n+1} (ties to the
    lowest id, as ``adjusted_probs``). Returns num_accepted [B] and next_token [B], int32.
    """
    choice = jnp.argmax(target_logits, axis=-1).astype(jnp.int32)  # [B, K+1]
    k = draft_tokens.shape[1]
    matches = (choice[:, :k] == draft_tokens).astype(jnp.int32)  # [B, K]
    num_accepted = jnp.sum(jnp.cumprod(matches, axis=1), axis=1)  # leading run
    next_token = jnp.take_along_axis(choice, num_accepted[:, None], axis=1)[:, 0]
    return num_accepted.astype(jnp.int32), next_token
