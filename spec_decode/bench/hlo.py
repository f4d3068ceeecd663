"""Reading compiled HLO text: which collectives a program runs, and whether any gathers a weight.

``hlo_text`` is ``jax.jit(f).lower(...).compile().as_text()``. The mesh benchmark reports both
counts beside its timings, and the mesh tests assert that no weight is gathered at run time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

# A collective op's name where it is applied (GPUs: the asynchronous ``-start`` half).
_COLLECTIVE = re.compile(
    r"\s(all-reduce|all-gather|reduce-scatter|collective-permute|all-to-all)(?:-start)?\("
)
# The result type of an all-gather (GPUs: an all-gather-start tuple whose last entry is the
# gathered array) and the op name.
_ALL_GATHER = re.compile(r"=\s*(.*?)\sall-gather(?:-start)?\(")
_SHAPE = re.compile(r"\w+\[([\d,]*)\]")


def collective_counts(hlo_text: str) -> dict[str, int]:
    """How many of each collective op a compiled program holds (a loop body's count once)."""
    counts: dict[str, int] = {}
    for match in _COLLECTIVE.finditer(hlo_text):
        counts[match.group(1)] = counts.get(match.group(1), 0) + 1
    return counts


def _dims(shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(sorted(int(d) for d in shape if int(d) != 1))


def weight_gathers(hlo_text: str, params: Any) -> list[str]:
    """The all-gather lines of compiled HLO whose result has the dimensions of a whole weight.

    A result whose dimensions
    (ignoring order and size-1 axes) are those of a parameter, or of one layer of a scanned
    parameter (leading 'layers' axis), counts as a gathered weight. It is a heuristic: an
    activation of a tiny model might have a weight's dimensions by chance, so tests pick
    dimensions that keep them apart.
    """
    weights = set()
    for leaf in jax.tree.leaves(params):
        shape = np.shape(leaf)
        if len(shape) >= 2:
            weights.add(_dims(shape))
        if len(shape) >= 3:
            weights.add(_dims(shape[1:]))
    found = []
    for line in hlo_text.splitlines():
        match = _ALL_GATHER.search(line)
        shapes = _SHAPE.findall(match.group(1)) if match else []
        if shapes and _dims(d for d in shapes[-1].split(",") if d) in weights:
            found.append(line.strip())
    return found
