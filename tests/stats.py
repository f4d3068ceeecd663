"""Statistical helpers: chi-square tests and the total-variation error they can detect.

Power argument used throughout: if the true distribution p' differs from the claimed p by total
variation delta, the chi-square noncentrality is n * sum (p' - p)^2 / p >= 4 n delta^2 (Cauchy-
Schwarz with sum p = 1). For two samples of n each it is >= 2 n delta^2. ``detectable_tv``
returns the smallest delta whose noncentrality gives the stated power at the significance level.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, stats

SIGNIFICANCE = 1e-3
POWER = 0.99


def detectable_tv(n: float, df: int, significance=SIGNIFICANCE, power=POWER, two_sample=False):
    """Smallest total-variation error detected with probability >= power (asymptotic chi2)."""
    critical = stats.chi2.ppf(1 - significance, df)
    lam = optimize.brentq(lambda x: stats.ncx2.sf(critical, df, x) - power, 1e-6, 1e6)
    return float(np.sqrt(lam / ((2 if two_sample else 4) * n)))


def goodness_of_fit(counts: np.ndarray, probs: np.ndarray) -> float:
    """p-value that counts were drawn from probs. Zero-probability cells must be empty."""
    counts, probs = np.asarray(counts, float), np.asarray(probs, float)
    assert counts[probs == 0].sum() == 0, "a zero-probability outcome was drawn"
    keep = probs > 0
    if keep.sum() < 2:
        return 1.0
    expected = probs[keep] / probs[keep].sum() * counts.sum()
    return float(stats.chisquare(counts[keep], expected).pvalue)


def two_sample(counts_a: np.ndarray, counts_b: np.ndarray) -> float:
    """p-value that two count vectors come from the same distribution (chi2 contingency).

    Cells whose pooled count is under 5 are merged into one so the approximation holds.
    """
    a, b = np.asarray(counts_a, float), np.asarray(counts_b, float)
    small = (a + b) < 5
    table = np.stack([a[~small], b[~small]])
    if small.any():
        table = np.concatenate([table, [[a[small].sum()], [b[small].sum()]]], axis=1)
    table = table[:, table.sum(0) > 0]
    if table.shape[1] < 2:
        return 1.0
    return float(stats.chi2_contingency(table)[1])
