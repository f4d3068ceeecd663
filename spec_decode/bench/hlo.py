"""Reading compiled HLO text: which collectives a program runs, and whether any gathers a weight.

``hlo_text`` is ``jax.jit(f).lower(...).compile().as_text()``. The mesh benchmark reports both
counts beside its timings, and the mesh tests assert that no weight is gathered at run time.
"""

from __future__ import annotations

import dataclasses
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


# -- kernels per loop iteration ------------------------------------------------------------------
#
# On a GPU every instruction of an optimised HLO module that is not pure bookkeeping runs as one
# kernel (a fusion, a cuBLAS/cuDNN custom-call, an unfused copy or dynamic-update-slice, a
# collective). At ~2 us of launch overhead each, their count per decode step is what bounds a
# small model's step time, whatever its bytes.

# Opcodes that launch nothing: tuple plumbing, aliases, scheduling tokens, and the second
# halves of asynchronous pairs (the launch is counted at the ``-start``).
_FREE = frozenset(
    {
        "parameter", "constant", "get-tuple-element", "tuple", "bitcast", "after-all",
        "add-dependency", "opt-barrier", "partition-id", "replica-id", "domain", "async-update",
        "async-done", "all-reduce-done", "all-gather-done", "collective-permute-done",
        "copy-done", "send-done", "recv-done",
    }
)  # fmt: skip
_COMPUTATION = re.compile(r"^(ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*.*?\s([a-z][a-z0-9\-]*)\((.*)$")
_TRIP_COUNT = re.compile(r'"known_trip_count":\{"n":"(\d+)"\}')
_CALLED = {
    "body": re.compile(r"\bbody=%?([\w.\-]+)"),
    "condition": re.compile(r"\bcondition=%?([\w.\-]+)"),
    "calls": re.compile(r"\bcalls=%?([\w.\-]+)"),
    "to_apply": re.compile(r"\bto_apply=%?([\w.\-]+)"),
}
_BRANCHES = re.compile(r"(?:branch_computations=\{([^}]*)\}|true_computation=%?([\w.\-]+)"
                       r"|false_computation=%?([\w.\-]+))")  # fmt: skip
_LT_BOUND = re.compile(r"s32\[\]\s+constant\((\d+)\)")


@dataclasses.dataclass(frozen=True)
class Instruction:
    name: str
    opcode: str
    line: str


@dataclasses.dataclass(frozen=True)
class KernelCount:
    """Kernels one iteration of a loop launches.

    Attributes:
      total: all kernels, nested loops multiplied by their trip counts.
      by_opcode: the same total split by the launching opcode ('fusion', 'custom-call', ...).
      inner_loops: nested while loops met (each counted trips times).
      unknown_trips: nested loops whose trip count could not be read (counted once each).
    """

    total: int
    by_opcode: dict[str, int]
    inner_loops: int = 0
    unknown_trips: int = 0


def parse_computations(hlo_text: str) -> tuple[dict[str, list[Instruction]], str | None]:
    """HLO text -> ({computation name: its instructions}, the ENTRY computation's name)."""
    computations: dict[str, list[Instruction]] = {}
    entry, current = None, None
    for line in hlo_text.splitlines():
        if current is None:
            match = _COMPUTATION.match(line)
            if match and "=" not in line.split("(")[0]:
                current = match.group(2)
                computations[current] = []
                if match.group(1):
                    entry = current
            continue
        if line.strip() == "}":
            current = None
            continue
        match = _INSTRUCTION.match(line)
        if match:
            computations[current].append(Instruction(match.group(1), match.group(2), line))
    return computations, entry


def _trip_count(instruction: Instruction, computations) -> int | None:
    """A while loop's trip count: XLA's ``known_trip_count``, else the one s32 constant its
    condition compares the counter against (loops from ``fori_loop`` that start at 0)."""
    match = _TRIP_COUNT.search(instruction.line)
    if match:
        return int(match.group(1))
    condition = _CALLED["condition"].search(instruction.line)
    lines = [i.line for i in computations.get(condition.group(1), [])] if condition else []
    bounds = {int(b) for line in lines for b in _LT_BOUND.findall(line)}
    if len(bounds) == 1 and any("direction=LT" in line for line in lines):
        return bounds.pop()
    return None


class _Counter:
    def __init__(self, computations):
        self.computations = computations
        self.by_opcode: dict[str, int] = {}
        self.inner_loops = 0
        self.unknown_trips = 0

    def count(self, name: str, times: int = 1) -> None:
        for instruction in self.computations.get(name, []):
            self.instruction(instruction, times)

    def instruction(self, instruction: Instruction, times: int) -> None:
        opcode, line = instruction.opcode, instruction.line
        if opcode in _FREE:
            return
        if opcode == "while":
            trips = _trip_count(instruction, self.computations)
            self.inner_loops += 1
            if trips is None:
                self.unknown_trips += 1
                trips = 1
            condition = _CALLED["condition"].search(line).group(1)
            self.count(_CALLED["body"].search(line).group(1), times * trips)
            self.count(condition, times * (trips + 1))  # the last test exits
            return
        if opcode == "conditional":
            branches = [
                name.strip().lstrip("%")
                for match in _BRANCHES.finditer(line)
                for group in match.groups()
                if group
                for name in group.split(",")
            ]
            # One branch runs: charge the most expensive, as a bound.
            sizes = [self.sub_total(branch) for branch in branches]
            best = branches[max(range(len(sizes)), key=sizes.__getitem__)] if sizes else None
            if best is not None:
                self.count(best, times)
            return
        if opcode in ("call", "async-start") and _CALLED["calls"].search(line):
            self.count(_CALLED["calls"].search(line).group(1), times)
            return
        if opcode == "call" and _CALLED["to_apply"].search(line):
            self.count(_CALLED["to_apply"].search(line).group(1), times)
            return
        self.by_opcode[opcode] = self.by_opcode.get(opcode, 0) + times

    def sub_total(self, name: str) -> int:
        counter = _Counter(self.computations)
        counter.count(name)
        return sum(counter.by_opcode.values())

    def result(self) -> KernelCount:
        return KernelCount(
            sum(self.by_opcode.values()), dict(sorted(self.by_opcode.items())),
            self.inner_loops, self.unknown_trips,
        )  # fmt: skip


def computation_kernels(hlo_text: str, computation: str) -> KernelCount:
    """Kernels one run of ``computation`` (a name in ``hlo_text``) launches, callees included."""
    computations, _ = parse_computations(hlo_text)
    if computation not in computations:
        raise ValueError(f"computation={computation!r} is not in the HLO text")
    counter = _Counter(computations)
    counter.count(computation)
    return counter.result()


def outer_loops(hlo_text: str) -> list[Instruction]:
    """The while loops reachable from ENTRY without entering another loop (through calls,
    conditionals and async wrappers)."""
    computations, entry = parse_computations(hlo_text)
    if entry is None:
        raise ValueError("hlo_text has no ENTRY computation: pass a compiled module's as_text()")
    found, pending, seen = [], [entry], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        for instruction in computations.get(name, []):
            if instruction.opcode == "while":
                found.append(instruction)
            elif instruction.opcode in ("call", "conditional", "async-start"):
                pending += [m.group(1) for m in _CALLED["calls"].finditer(instruction.line)]
                pending += [
                    n.strip().lstrip("%")
                    for m in _BRANCHES.finditer(instruction.line)
                    for g in m.groups()
                    if g
                    for n in g.split(",")
                ]
    return found


def decode_step_kernels(hlo_text: str) -> KernelCount:
    """Kernels one iteration of a compiled decode loop launches (one round; with no draft,
    one target step), from ``SpeculativeDecoder(...).lower(...).compile().as_text()``.

    The decode loop is the outer while loop whose trip count is not known at compile time (it
    runs until every row is done); the prefill's layer scan, if scanned, has a known one. Its
    body's kernels are counted with nested loops times their trips and conditionals at their
    largest branch. Only an indication on a CPU: XLA:CPU fuses and emits dots differently.
    """
    computations, _ = parse_computations(hlo_text)
    loops = outer_loops(hlo_text)
    unbounded = [loop for loop in loops if _trip_count(loop, computations) is None]
    candidates = unbounded or loops
    if not candidates:
        raise ValueError("hlo_text has no while loop: it is not a compiled decode loop")

    def body_count(loop):
        counter = _Counter(computations)
        counter.count(_CALLED["body"].search(loop.line).group(1))
        return counter.result()

    return max((body_count(loop) for loop in candidates), key=lambda count: count.total)
