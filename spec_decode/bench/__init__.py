"""Measuring decoders: timing, acceptance, cost ratio, and the paper's predictions beside them;
what compiled programs communicate and how many kernels a decode step launches (``hlo``)."""

from spec_decode.bench.costs import auto_policy, in_loop_seconds, measure_round_costs
from spec_decode.bench.hlo import (
    KernelCount,
    collective_counts,
    computation_kernels,
    decode_step_kernels,
    weight_gathers,
)
from spec_decode.bench.measure import (
    BenchConfig,
    analytic_alpha,
    measure_cost_ratio,
    measure_pair,
    packed_continuations,
    time_call,
    time_calls,
)

__all__ = [
    "BenchConfig",
    "KernelCount",
    "analytic_alpha",
    "auto_policy",
    "collective_counts",
    "in_loop_seconds",
    "measure_round_costs",
    "computation_kernels",
    "decode_step_kernels",
    "measure_cost_ratio",
    "measure_pair",
    "packed_continuations",
    "time_call",
    "time_calls",
    "weight_gathers",
]
