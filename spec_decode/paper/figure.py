"""Figure 3's style, per task: speedup and tokens per target call against gamma.

Markers are measurements (one per draft, temperature and gamma; circles T=0, squares T=1);
lines (solid T=0, dashed T=1) are the theory at that
draft's alpha (the mean of its measured alphas at that temperature) and measured c: Theorem
3.8's (1 - alpha^(gamma+1)) / ((1 - alpha)(gamma c + 1)) on the left, the expected tokens per
call (1 - alpha^(gamma+1)) / (1 - alpha) on the right.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from spec_decode.core import theory


def theory_curves(runs, temperature: float, c: float, gammas) -> dict[str, list[float]] | None:
    """The theory at the mean measured alpha of ``runs`` at ``temperature``; None without one."""
    alphas = [
        r["alpha"] for r in runs if r["temperature"] == temperature and r["alpha"] is not None
    ]
    if not alphas:
        return None
    alpha = float(np.mean(alphas))
    return {
        "alpha": alpha,
        "speedup": [theory.expected_speedup(alpha, int(g), c) for g in gammas],
        "tokens_per_call": [theory.expected_tokens_per_call(alpha, int(g)) for g in gammas],
    }


def plot_task(task: str, measured: Mapping[str, Any], path: str | Path):
    """Draw one task's figure into ``path`` (PNG); returns the matplotlib figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    drafts = [(n, d) for n, d in measured["drafts"].items() if d["kind"] != "ngram"]
    for index, (name, draft) in enumerate(drafts):
        color = colors[index % len(colors)]
        for temperature, style, marker in ((0.0, "-", "o"), (1.0, "--", "s")):
            runs = sorted(
                (r for r in draft["runs"] if r["temperature"] == temperature),
                key=lambda r: r["gamma"],
            )
            if not runs:
                continue
            gammas = [r["gamma"] for r in runs]
            label = f"{name} T={temperature:g}"
            points = dict(color=color, linestyle="none", marker=marker)
            left.plot(gammas, [r["speedup"] for r in runs], label=label, **points)
            right.plot(gammas, [r["tokens_per_target_call"] for r in runs], **points)
            dense = np.arange(1, max(gammas) + 1)
            curves = theory_curves(runs, temperature, draft["c"], dense)
            if curves is not None:
                left.plot(dense, curves["speedup"], style, color=color, alpha=0.6)
                right.plot(dense, curves["tokens_per_call"], style, color=color, alpha=0.6)
    left.set(xlabel="gamma", ylabel="walltime speedup", title=f"{task}: speedup")
    right.set(xlabel="gamma", ylabel="tokens per target call", title=f"{task}: tokens per call")
    left.axhline(1.0, color="gray", lw=0.5)
    left.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return figure
