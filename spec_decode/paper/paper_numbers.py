"""The paper's own Table 2 and Table 3 numbers (T5-XXL target), set beside ours.

Keys: task ('translation_en_de' for WMT EnDe, 'summarization' for CNN/DM), the paper's draft
('small' 77M, 'base' 250M, 'large' 800M) and the temperature.
"""

from __future__ import annotations

# (task, draft, T) -> (gamma, alpha, c, expected speedup, measured speedup): Table 2.
TABLE2 = {
    ("translation_en_de", "small", 0.0): (7, 0.75, 0.02, 3.2, 3.4),
    ("translation_en_de", "base", 0.0): (7, 0.80, 0.04, 3.3, 2.8),
    ("translation_en_de", "large", 0.0): (7, 0.82, 0.11, 2.5, 1.7),
    ("translation_en_de", "small", 1.0): (7, 0.62, 0.02, 2.3, 2.6),
    ("translation_en_de", "base", 1.0): (5, 0.68, 0.04, 2.4, 2.4),
    ("translation_en_de", "large", 1.0): (3, 0.71, 0.11, 2.0, 1.4),
    ("summarization", "small", 0.0): (5, 0.65, 0.02, 2.4, 3.1),
    ("summarization", "base", 0.0): (5, 0.73, 0.04, 2.6, 3.0),
    ("summarization", "large", 0.0): (3, 0.74, 0.11, 2.0, 2.2),
    ("summarization", "small", 1.0): (5, 0.53, 0.02, 1.9, 2.3),
    ("summarization", "base", 1.0): (3, 0.55, 0.04, 1.8, 2.2),
    ("summarization", "large", 1.0): (3, 0.56, 0.11, 1.6, 1.7),
}

# task -> draft -> (alpha at T=0, alpha at T=1): Table 3's T5-XXL rows.
TABLE3 = {
    "translation_en_de": {
        "unigram": (0.08, 0.07),
        "bigram": (0.20, 0.19),
        "small": (0.75, 0.62),
        "base": (0.80, 0.68),
        "large": (0.82, 0.71),
    },
    "summarization": {
        "unigram": (0.13, 0.08),
        "bigram": (0.23, 0.16),
        "small": (0.65, 0.53),
        "base": (0.73, 0.55),
        "large": (0.74, 0.56),
    },
}

PAPER_TASK_NAMES = {"translation_en_de": "EnDe", "summarization": "CNNDM"}


def table2_row(task: str, paper_draft: str | None, temperature: float):
    """The paper's (gamma, alpha, c, expected, measured) for that cell, or None."""
    if paper_draft is None:
        return None
    return TABLE2.get((task, paper_draft, float(temperature)))


def table3_alpha(task: str, paper_draft: str | None, temperature: float) -> float | None:
    """The paper's alpha for that draft at T=0 or T=1, or None."""
    row = TABLE3.get(task, {}).get(paper_draft) if paper_draft else None
    if row is None or float(temperature) not in (0.0, 1.0):
        return None
    return row[0 if float(temperature) == 0.0 else 1]
