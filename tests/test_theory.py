"""The paper's formulas reproduce its own Table 1 and Table 2 figures."""

import numpy as np
import pytest

from spec_decode.core import theory

# Table 1 (c = c_hat = 0): alpha, gamma, operations factor, speed factor.
TABLE_1 = [(0.6, 2, 1.53, 1.96), (0.7, 3, 1.58, 2.53), (0.8, 2, 1.23, 2.44),
           (0.8, 5, 1.63, 3.69), (0.9, 2, 1.11, 2.71), (0.9, 10, 1.60, 6.86)]  # fmt: skip


@pytest.mark.parametrize("alpha, gamma, ops, speed", TABLE_1)
def test_table_1(alpha, gamma, ops, speed):
    assert theory.expected_speedup(alpha, gamma, 0.0) == pytest.approx(speed, abs=0.006)
    assert theory.arithmetic_factor(alpha, gamma, 0.0) == pytest.approx(ops, abs=0.006)


# Table 2 rows: alpha, c, gamma, the paper's expected speedup (rounded to 0.1).
TABLE_2 = [(0.75, 0.02, 7, 3.2), (0.80, 0.04, 7, 3.3), (0.82, 0.11, 7, 2.5),
           (0.62, 0.02, 7, 2.3), (0.68, 0.04, 5, 2.4), (0.71, 0.11, 3, 2.0),
           (0.65, 0.02, 5, 2.4), (0.73, 0.04, 5, 2.6), (0.74, 0.11, 3, 2.0),
           (0.53, 0.02, 5, 1.9), (0.55, 0.04, 3, 1.8), (0.56, 0.11, 3, 1.6)]  # fmt: skip


@pytest.mark.parametrize("alpha, c, gamma, expected", TABLE_2)
def test_table_2_expected_column(alpha, c, gamma, expected):
    """The table prints alpha and c to 2 decimals and the speedup to 1: the formula over the
    inputs' rounding interval must reach the printed value's rounding interval."""
    values = [theory.expected_speedup(alpha + da, gamma, c + dc)
              for da in (-0.005, 0.005) for dc in (-0.005, 0.005)]  # fmt: skip
    assert min(values) <= expected + 0.05 and max(values) >= expected - 0.05


def test_optimal_gamma_maximises_and_gain_bound_holds():
    for alpha in np.linspace(0.1, 0.95, 18):
        for c in (0.0, 0.02, 0.1, 0.3):
            best = theory.optimal_gamma(alpha, c)
            value = theory.expected_speedup(alpha, best, c)
            assert all(value >= theory.expected_speedup(alpha, g, c) for g in range(1, 33))
            if alpha > c:  # the paper: some gamma helps, by at least (1 + alpha) / (1 + c)
                assert value >= (1 + alpha) / (1 + c) - 1e-12


def test_acceptance_rate_is_one_minus_total_variation():
    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(7), 50), rng.dirichlet(np.ones(7), 50)
    tv = 0.5 * np.abs(p - q).sum(-1)
    assert theory.acceptance_rate(p, q) == pytest.approx(np.mean(1 - tv))
