"""The paper's analysis (section 3) as functions: expected tokens, speedup, optimal gamma."""

from __future__ import annotations

import numpy as np


def acceptance_rate(target_probs: np.ndarray, draft_probs: np.ndarray) -> float:
    """alpha = mean over positions of beta = sum_x min(p(x), q(x)) (probs [..., V])."""
    beta = np.minimum(np.asarray(target_probs), np.asarray(draft_probs)).sum(-1)
    return float(np.mean(beta))


def expected_tokens_per_call(alpha: float, gamma: int) -> float:
    """(1 - alpha^(gamma+1)) / (1 - alpha): tokens per target call with i.i.d. acceptances."""
    if alpha >= 1:
        return float(gamma + 1)
    return float((1 - alpha ** (gamma + 1)) / (1 - alpha))


def expected_speedup(alpha: float, gamma: int, c: float) -> float:
    """Theorem 3.8: walltime improvement (1 - alpha^(gamma+1)) / ((1 - alpha)(gamma c + 1))."""
    return expected_tokens_per_call(alpha, gamma) / (gamma * c + 1)


def optimal_gamma(alpha: float, c: float, max_gamma: int = 32) -> int:
    """The integer gamma in 1..max_gamma that maximises Theorem 3.8 (the paper's Figure 3)."""
    gammas = range(1, max_gamma + 1)
    return max(gammas, key=lambda g: expected_speedup(alpha, g, c))


def arithmetic_factor(alpha: float, gamma: int, c_hat: float) -> float:
    """Growth of arithmetic operations: (1 - alpha)(gamma c_hat + gamma + 1)/(1 - alpha^(g+1))."""
    return (gamma * c_hat + gamma + 1) / expected_tokens_per_call(alpha, gamma)
