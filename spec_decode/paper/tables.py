"""Tables 2 and 3 in the paper's layouts, from a run's results, as rows, markdown and JSON.

The results (``results.json``, written by the report stage) hold, per task,

    drafts: name -> {"kind": "t5" | "distilled" | "ngram", "paper": the paper's draft or None,
                     "c": float, "runs": [measure.run_record, ...], "greedy": {...}}

Table 2: one row per task, T5 draft and temperature at the paper's gamma for that draft's
counterpart, and one at the gamma of the best measured speedup; our columns, the projection
(Theorem 3.8 at our alpha and the c of the counterpart T5 1.1 size against T5 1.1 XXL, both
timed with random weights on the same machine: ``results["projection"]``), then the paper's.
Table 3: one row per task and draft, alpha at T=0 and T=1 measured at ``alpha_gamma``, then
the paper's alpha for the counterpart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from spec_decode.core import theory
from spec_decode.paper import paper_numbers

TABLE2_COLUMNS = (
    "task", "draft", "T", "gamma", "alpha", "c", "expected", "measured", "measured/expected",
    "XXL c", "XXL expected", "paper draft", "paper gamma", "paper alpha", "paper c",
    "paper expected", "paper measured",
)  # fmt: skip
TABLE3_COLUMNS = ("task", "draft", "alpha T=0", "alpha T=1", "paper alpha T=0", "paper alpha T=1")


def _run(runs: Sequence[dict], temperature: float, gamma: int) -> dict | None:
    for run in runs:
        if run["temperature"] == float(temperature) and run["gamma"] == int(gamma):
            return run
    return None


def table2_rows(results: Mapping[str, Any], where: str = "drafts") -> list[dict[str, Any]]:
    """Table 2's rows (dicts keyed by ``TABLE2_COLUMNS``) for every task and T5 draft;
    ``where='cpu'``: of the drafts timed on the CPU cores."""
    rows = []
    c_xxl = (results.get("projection") or {}).get("c_vs_xxl", {})
    for task, measured in results["tasks"].items():
        drafts = measured["drafts"] if where == "drafts" else measured[where]["drafts"]
        for name, draft in drafts.items():
            if draft["kind"] == "ngram":
                continue
            temperatures = sorted({r["temperature"] for r in draft["runs"]})
            for temperature in temperatures:
                paper = paper_numbers.table2_row(task, draft.get("paper"), temperature)
                best = max(
                    (r for r in draft["runs"] if r["temperature"] == temperature),
                    key=lambda r: r["speedup"],
                )
                chosen = [best]
                at_paper = None if paper is None else _run(draft["runs"], temperature, paper[0])
                if at_paper is not None and at_paper is not best:
                    chosen.insert(0, at_paper)
                for run in chosen:
                    rows.append(_table2_row(task, name, draft, run, paper, c_xxl))
    return rows


def _table2_row(task, name, draft, run, paper, c_xxl) -> dict[str, Any]:
    projected_c = c_xxl.get(draft.get("paper"))
    row = {
        "task": task,
        "draft": name,
        "T": run["temperature"],
        "gamma": run["gamma"],
        "alpha": run["alpha"],
        "c": draft["c"],
        "expected": run["expected_speedup"],
        "measured": run["speedup"],
        "measured/expected": run["measured_over_expected"],
        "XXL c": projected_c,
        "XXL expected": (
            None
            if projected_c is None or run["alpha"] is None
            else theory.expected_speedup(run["alpha"], run["gamma"], projected_c)
        ),
        "paper draft": draft.get("paper"),
    }
    names = ("paper gamma", "paper alpha", "paper c", "paper expected", "paper measured")
    for column, value in zip(names, paper or (None,) * 5, strict=True):
        row[column] = value
    return row


def table3_rows(results: Mapping[str, Any], alpha_gamma: int) -> list[dict[str, Any]]:
    """Table 3's rows: each draft's alpha at T=0 and T=1 (gamma ``alpha_gamma``), the paper's."""
    rows = []
    for task, measured in results["tasks"].items():
        for name, draft in measured["drafts"].items():
            paper = name if draft["kind"] == "ngram" else draft.get("paper")
            row = {"task": task, "draft": name}
            for temperature in (0.0, 1.0):
                run = _run(draft["runs"], temperature, alpha_gamma)
                row[f"alpha T={temperature:g}"] = None if run is None else run["alpha"]
                row[f"paper alpha T={temperature:g}"] = (
                    None
                    if draft["kind"] == "distilled"
                    else paper_numbers.table3_alpha(task, paper, temperature)
                )
            rows.append(row)
    return rows


def markdown(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A GitHub markdown table; floats to 2 or 3 places, missing cells as '-'."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value.is_integer() and abs(value) < 100:
        return f"{value:g}"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)
