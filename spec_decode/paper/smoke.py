"""A toy corpus for ``reproduce_paper.py --smoke``: both tasks and the text file, in the
layout ``scripts/build_corpus.py`` writes, small enough for CPU tests.

translation_en_de is a word-for-word toy translation; summarization's summary is the first
three words of a document of random words. Neither is meant to be learned in a few steps.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = {
    "the": "der", "house": "haus", "cat": "katze", "dog": "hund", "tree": "baum",
    "water": "wasser", "fire": "feuer", "light": "licht", "garden": "garten", "is": "ist",
    "small": "klein", "big": "gross", "old": "alt", "new": "neu", "red": "rot", "green": "gruen",
    "and": "und", "not": "nicht", "here": "hier", "there": "dort",
}  # fmt: skip
SIZES = {"train": 300, "validation": 32, "test": 32}


def write_smoke_corpus(directory: str | Path, seed: int = 0) -> Path:
    """Write the toy corpus into ``directory``; returns it."""
    rng = random.Random(seed)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    words = list(WORDS)
    for split, count in SIZES.items():
        translation, summarization, text = [], [], []
        for index in range(count):
            en = rng.choices(words, k=rng.randint(3, 8))
            group = f"{split}-{index}"
            translation.append({"en": " ".join(en), "de": " ".join(WORDS[w] for w in en),
                                "group": group})  # fmt: skip
            document = rng.choices(words, k=rng.randint(8, 16))
            summarization.append({"document": " ".join(document),
                                  "summary": " ".join(document[:3]), "group": group})  # fmt: skip
            text.append(" ".join(document))
        for name, rows in (("translation_en_de", translation), ("summarization", summarization)):
            lines = "".join(json.dumps(row) + "\n" for row in rows)
            (out / f"{name}.{split}.jsonl").write_text(lines)
        (out / f"text_en.{split}.txt").write_text("\n\n".join(text) + "\n")
    return out
