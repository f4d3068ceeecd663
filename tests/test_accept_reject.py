"""Exactness of accept_reject: emitted tokens follow the target, conditionals included."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from stats import SIGNIFICANCE, detectable_tv, goodness_of_fit

from spec_decode import accept_reject
from spec_decode.core.rejection import accept_reject_given_uniforms

V = 4
N = 200_000


def _tree(rng, k, concentration=1.0):
    """Distributions at depth j = 1..k that depend on the j - 1 tokens before them."""
    return [rng.dirichlet([concentration] * V, size=V**j) for j in range(k)]


def _prefix_index(tokens: np.ndarray) -> np.ndarray:
    """Encode prefixes [N, j] as integers in [0, V^j)."""
    index = np.zeros(tokens.shape[0], np.int64)
    for j in range(tokens.shape[1]):
        index = index * V + tokens[:, j]
    return index


def _simulate(k, seed):
    """Draw N rounds: x_i ~ q_i(. | x_<i), p_i(. | x_<i) from a target tree; run accept_reject."""
    rng = np.random.default_rng(seed)
    p_tree, q_tree = _tree(rng, k + 1), _tree(rng, k)
    x = np.zeros((N, k), np.int32)
    q = np.zeros((N, k, V), np.float32)
    p = np.zeros((N, k + 1, V), np.float32)
    for j in range(k + 1):
        prefix = _prefix_index(x[:, :j])
        p[:, j] = p_tree[j][prefix]
        if j < k:
            q[:, j] = q_tree[j][prefix]
            cdf = np.cumsum(q[:, j], axis=1)
            x[:, j] = np.minimum((rng.random(N)[:, None] > cdf).sum(1), V - 1)
    n, t = jax.jit(accept_reject)(p, q, x, jax.random.key(seed))
    return p_tree, q_tree, x, np.asarray(n), np.asarray(t)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_emitted_tokens_follow_target_conditionals(k):
    """Token j of a round, given the j - 1 accepted tokens before it, follows p_j(. | prefix).

    Every (depth, prefix) bucket with at least 2,000 samples gets a chi-square goodness-of-fit
    test at significance 1e-3 / (number of buckets). Power: the depth-1 bucket (N = 200,000)
    detects a total-variation error of 0.01 with probability 0.99, and every bucket tested
    (>= 2,000 samples) one of 0.1 (Bonferroni-corrected levels); asserted from the counts.
    """
    p_tree, _, x, n, t = _simulate(k, seed=10 + k)
    emitted = np.concatenate([x, np.zeros((N, 1), np.int32)], axis=1)
    emitted[np.arange(N), n] = t  # row r emits emitted[r, :n + 1]
    buckets = []
    for depth in range(k + 1):
        reached = n >= depth  # token depth+1 is emitted when the depth before it were accepted
        prefix = _prefix_index(emitted[reached, :depth])
        for index in np.unique(prefix):
            tokens = emitted[reached, depth][prefix == index]
            if tokens.size >= 2000:
                buckets.append((tokens, p_tree[depth][index]))
    assert detectable_tv(N, V - 1, SIGNIFICANCE / len(buckets)) < 0.01
    assert detectable_tv(2000, V - 1, SIGNIFICANCE / len(buckets)) < 0.1
    assert len(buckets) >= 1 + min(k, 2) * 2  # conditionals beyond the first token are tested
    for tokens, probs in buckets:
        counts = np.bincount(tokens, minlength=V)
        assert goodness_of_fit(counts, probs) > SIGNIFICANCE / len(buckets)


def test_first_acceptance_rate_is_beta():
    """P(x_1 accepted) = sum_x min(p_1(x), q_1(x)) (the paper's beta).

    Binomial z-test at two-sided 1e-3 (|z| < 3.29); N = 200,000 detects an error of 0.004
    in the acceptance rate with probability > 0.99.
    """
    p_tree, q_tree, _, n, _ = _simulate(1, seed=3)
    beta = np.minimum(p_tree[0][0], q_tree[0][0]).sum()
    rate = (n >= 1).mean()
    z = (rate - beta) / np.sqrt(beta * (1 - beta) / N)
    assert abs(z) < 3.29


def _run(p, q, x, seed=0, batch=20_000):
    p = jnp.broadcast_to(jnp.asarray(p, jnp.float32), (batch,) + np.shape(p))
    q = jnp.broadcast_to(jnp.asarray(q, jnp.float32), (batch,) + np.shape(q))
    x = jnp.broadcast_to(jnp.asarray(x, jnp.int32), (batch,) + np.shape(x))
    n, t = accept_reject(p, q, x, jax.random.key(seed))
    return np.asarray(n), np.asarray(t)


def test_p_equals_q_accepts_everything():
    """p = q: every draft is accepted (r q < q for r < 1) and the extra token follows p_{K+1}.

    Goodness of fit on 20,000 draws at 1e-3 detects a TV error of 0.022 with power 0.99.
    """
    probs = np.array([0.1, 0.2, 0.3, 0.4])
    n, t = _run([probs, probs, probs], [probs, probs], [3, 0])
    assert (n == 2).all()
    assert goodness_of_fit(np.bincount(t, minlength=V), probs) > SIGNIFICANCE


def test_disjoint_supports_reject_and_resample_from_p():
    """Disjoint supports: nothing is accepted and the next token follows p_1 (residual = p_1)."""
    p = np.array([0.5, 0.5, 0.0, 0.0])
    q = np.array([0.0, 0.0, 0.3, 0.7])
    n, t = _run([p, p], [q], [2])
    assert (n == 0).all()
    assert goodness_of_fit(np.bincount(t, minlength=V), p) > SIGNIFICANCE


def test_token_the_draft_never_proposes_is_still_emitted_at_rate_p():
    """q(x) = 0 < p(x): x can only come from the residual; the first token still follows p.

    Drafts are drawn from q; 20,000 rounds detect a TV error of 0.022 (power 0.99, 1e-3).
    """
    p = np.array([0.4, 0.3, 0.2, 0.1])
    q = np.array([0.0, 0.5, 0.5, 0.0])
    rng = np.random.default_rng(0)
    x = rng.choice(V, size=20_000, p=q)
    pp = np.broadcast_to(np.stack([p, p]), (20_000, 2, V))
    qq = np.broadcast_to(q[None], (20_000, 1, V))
    n, t = accept_reject(pp, qq, x[:, None], jax.random.key(1))
    first = np.where(np.asarray(n) >= 1, x, np.asarray(t))
    assert goodness_of_fit(np.bincount(first, minlength=V), p) > SIGNIFICANCE


def test_drafted_token_with_zero_target_probability_is_never_accepted():
    p = np.array([0.0, 0.5, 0.5, 0.0])
    q = np.array([0.9, 0.1, 0.0, 0.0])
    n, t = _run([p, p], [q], [0])
    assert (n == 0).all()
    assert set(np.unique(t)) <= {1, 2}


def test_zero_mass_residual_falls_back_to_p_without_nan():
    """p = q but the drafted token has probability 0 under both: it is rejected, the residual
    max(0, p - q) is all zero, and the next token comes from p (never NaN, never a p = 0 token)."""
    probs = np.array([0.0, 0.25, 0.75, 0.0])
    n, t = _run([probs, probs], [probs], [3])
    assert (n == 0).all()
    assert set(np.unique(t)) <= {1, 2}
    assert goodness_of_fit(np.bincount(t, minlength=V), probs) > SIGNIFICANCE


def test_uniform_draw_of_exactly_zero():
    """r = 0 accepts a token with p(x) > 0 however small, and rejects one with p(x) = 0."""
    q = jnp.array([[0.5, 0.5, 0.0, 0.0]])
    key = jax.random.key(0)
    r = jnp.zeros((1,))
    small = jnp.array([[1e-30, 0.0, 0.5, 0.5]] * 2)
    n, _ = accept_reject_given_uniforms(small, q, jnp.array([0]), r, key)
    assert int(n) == 1
    zero = jnp.array([[0.0, 0.0, 0.5, 0.5]] * 2)
    n, t = accept_reject_given_uniforms(zero, q, jnp.array([0]), r, key)
    assert int(n) == 0 and int(t) in (2, 3)


@pytest.mark.parametrize("same", [True, False])
def test_one_hot_distributions_are_deterministic(same):
    """Greedy case: p, q one-hot. Same token: accepted; different: rejected and p's token."""
    p = np.eye(V)[[2, 1, 3]]
    q = np.eye(V)[[2, 1]] if same else np.eye(V)[[2, 0]]
    n, t = _run(p, q, [2, 1] if same else [2, 0], batch=64)
    if same:
        assert (n == 2).all() and (t == 3).all()
    else:
        assert (n == 1).all() and (t == 1).all()


def test_rows_use_independent_randomness():
    """Per-row keys: a row's outcome depends only on its own key, not on its batch neighbours."""
    rng = np.random.default_rng(5)
    p = rng.dirichlet([1.0] * V, size=(6, 3)).astype(np.float32)
    q = rng.dirichlet([1.0] * V, size=(6, 2)).astype(np.float32)
    x = rng.integers(0, V, size=(6, 2))
    keys = jax.random.split(jax.random.key(7), 6)
    n, t = accept_reject(p, q, x, keys)
    for row in range(6):
        one = slice(row, row + 1)
        n1, t1 = accept_reject(p[one], q[one], x[one], keys[one])
        assert (int(n1[0]), int(t1[0])) == (int(n[row]), int(t[row]))
    outcomes = {(int(a), int(b)) for a, b in itertools.product(n, t)}
    assert len(outcomes) > 1


@pytest.mark.parametrize(
    "p_shape, q_shape, x_shape, name",
    [((2, 3, 4), (2, 2, 4), (2,), "draft_tokens"), ((2, 3, 4), (2, 3, 4), (2, 2), "draft_probs"),
     ((2, 2, 4), (2, 2, 4), (2, 2), "target_probs")],
)  # fmt: skip
def test_bad_shapes_are_named(p_shape, q_shape, x_shape, name):
    with pytest.raises(ValueError, match=name):
        accept_reject(
            jnp.ones(p_shape) / 4, jnp.ones(q_shape) / 4, jnp.zeros(x_shape, jnp.int32),
            jax.random.key(0),
        )  # fmt: skip
