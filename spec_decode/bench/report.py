"""Benchmark output: results.json, a markdown table and PNG plots."""

from __future__ import annotations

import json
import pathlib

from spec_decode.core import theory

COLUMNS = [
    ("target", "{}"), ("draft", "{}"), ("batch", "{}"), ("gamma", "{}"), ("temperature", "{:g}"),
    ("tokens_per_s_autoregressive", "{:.1f}"), ("tokens_per_s_speculative", "{:.1f}"),
    ("speedup", "{:.2f}"), ("alpha_empirical", "{:.3f}"), ("alpha_analytic", "{:.3f}"),
    ("tokens_per_target_call", "{:.2f}"), ("tokens_per_target_call_theory", "{:.2f}"),
    ("c", "{:.3f}"), ("predicted_speedup", "{:.2f}"), ("measured_over_predicted", "{:.2f}"),
]  # fmt: skip


def markdown_table(records: list[dict]) -> str:
    header = "| " + " | ".join(name for name, _ in COLUMNS) + " |"
    rule = "|" + "---|" * len(COLUMNS)
    rows = ["| " + " | ".join(fmt.format(r[name]) for name, fmt in COLUMNS) + " |" for r in records]
    return "\n".join([header, rule, *rows])


def best_gammas(records: list[dict]) -> list[dict]:
    """Per (target, draft, batch, temperature): the paper's gamma and the best measured one."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["target"], r["draft"], r["batch"], r["temperature"]), []).append(r)
    out = []
    for (target, draft, batch, temperature), rs in groups.items():
        best = max(rs, key=lambda r: r["speedup"])
        alpha = sum(r["alpha_empirical"] for r in rs) / len(rs)
        c = sum(r["c"] for r in rs) / len(rs)
        out.append({
            "target": target, "draft": draft, "batch": batch, "temperature": temperature,
            "alpha": alpha, "c": c, "paper_gamma": theory.optimal_gamma(alpha, c, max_gamma=8),
            "best_measured_gamma": best["gamma"], "best_speedup": best["speedup"],
        })  # fmt: skip
    return out


def write(records: list[dict], out_dir: pathlib.Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(records, indent=1))
    gammas = best_gammas(records)
    (out_dir / "best_gamma.json").write_text(json.dumps(gammas, indent=1))
    lines = [
        markdown_table(records),
        "",
        "| target | draft | batch | T | alpha | c | paper gamma "
        "| best measured gamma | best speedup |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for g in gammas:
        lines.append(
            f"| {g['target']} | {g['draft']} | {g['batch']} | {g['temperature']:g} | "
            f"{g['alpha']:.3f} | {g['c']:.3f} | {g['paper_gamma']} | "
            f"{g['best_measured_gamma']} | {g['best_speedup']:.2f} |"
        )
    (out_dir / "results.md").write_text("\n".join(lines) + "\n")
    _plots(records, out_dir)


def _plots(records: list[dict], out_dir: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for (draft, temperature), rs in _group(records, ("draft", "temperature"), batch=1).items():
        rs = sorted(rs, key=lambda r: r["gamma"])
        line = ax.plot([r["gamma"] for r in rs], [r["speedup"] for r in rs], "o-",
                       label=f"{draft}, T={temperature:g}")[0]  # fmt: skip
        alpha = sum(r["alpha_empirical"] for r in rs) / len(rs)
        c = sum(r["c"] for r in rs) / len(rs)
        ax.plot([r["gamma"] for r in rs],
                [theory.expected_speedup(alpha, r["gamma"], c) for r in rs], "--",
                color=line.get_color(), alpha=0.6)  # fmt: skip
    ax.set(xlabel="gamma", ylabel="walltime speedup", title="batch 1 (dashed: Theorem 3.8)")
    ax.axhline(1.0, color="gray", lw=0.5)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "speedup_vs_gamma.png", dpi=80)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    by_setting = _group(records, ("draft", "temperature", "gamma"))
    for (draft, temperature, gamma), rs in by_setting.items():
        rs = sorted(rs, key=lambda r: r["batch"])
        if len(rs) > 1:
            ax.plot([r["batch"] for r in rs], [r["speedup"] for r in rs], "o-",
                    label=f"{draft}, T={temperature:g}, gamma={gamma}")  # fmt: skip
    ax.set(xscale="log", xlabel="batch size", ylabel="walltime speedup")
    ax.axhline(1.0, color="gray", lw=0.5)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out_dir / "speedup_vs_batch.png", dpi=80)
    plt.close(fig)


def _group(records, keys, **where):
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        if all(r[k] == v for k, v in where.items()):
            groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    return groups
