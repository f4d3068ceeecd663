"""Coding requests from documented Python functions: write one from its docstring, explain one,
and (held out as a whole category) write tests for one.

The group is the top-level package (``python:json``), so a held-out package's functions are
never asked about in training, whichever way they are worded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from spec_decode.data.docstrings import Docstring
from spec_decode.distill.requests.request import Category, Item, Phrasing

FENCE = "```"
WRITE = Category("code_write", (
    Phrasing("that", "Write a Python function that {does}."),
    Phrasing("implement", "Implement `{signature}` in Python. It should: {summary}."),
    Phrasing("how_would", "In Python, how would I {task}?"),
    Phrasing("code_this", "Can you code this up in Python for me? {summary}.", held_out=True),
))  # fmt: skip
EXPLAIN = Category("code_explain", (
    Phrasing("explain", "Explain what this function does:\n\n{code}"),
    Phrasing("what_does", "What does this Python code do?\n\n{code}"),
    Phrasing("step_by_step", "Walk me through this code step by step:\n\n{code}"),
    Phrasing("found", "I found this in a codebase. Is it doing anything odd?\n\n{code}",
             held_out=True),
))  # fmt: skip
TESTS = Category("code_tests", (
    Phrasing("unit_tests", "Write unit tests for this function:\n\n{code}"),
    Phrasing("pytest", "Write pytest tests that cover the edge cases of this code:\n\n{code}"),
), held_out=True)  # fmt: skip
CATEGORIES = (WRITE, EXPLAIN, TESTS)

# Imperative verbs a docstring's first line starts with, for "a function that <verb>s ...".
VERBS = frozenset("""
add append apply build calculate call check clear close collect compare compute construct
convert copy count create decode delete determine encode escape evaluate execute extract fetch
filter find format generate get handle initialize insert iterate join list load make match
merge move normalize open parse print process quote read register remove render replace reset
resolve return run save search select send set show sort split start stop strip transform
translate update validate wrap write yield
""".split())  # fmt: skip
SUMMARY_WORDS = (3, 25)
CODE_LINES, CODE_CHARS = (3, 40), 1500


def third_person(verb: str) -> str:
    """return -> returns, match -> matches, apply -> applies."""
    if verb.endswith(("ch", "sh", "x", "z", "ss", "o")):
        return verb + "es"
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def summary_line(docstring: str) -> str | None:
    """The docstring's first line without its full stop, when it is plain prose."""
    line = docstring.strip().split("\n")[0].strip()
    low, high = SUMMARY_WORDS
    if not line.endswith(".") or not low <= len(line.split()) <= high:
        return None
    if re.search(r"[`:<>*|{}\[\]\\]|\.\.|e\.g|i\.e", line) or not line.isascii():
        return None
    return line[:-1]


def items(functions: list[Docstring]) -> dict[str, Iterator[Item]]:
    return {WRITE.name: _write(functions), EXPLAIN.name: _explain(functions),
            TESTS.name: _explain(functions)}  # fmt: skip


def _key(d: Docstring) -> str:
    return f"{d.module}.{d.name}"


def _write(functions) -> Iterator[Item]:
    for d in functions:
        summary = summary_line(d.docstring)
        if summary is None:
            continue
        verb, _, rest = summary.partition(" ")
        if verb.lower() not in VERBS or not rest:
            continue
        fields = {
            "does": f"{third_person(verb.lower())} {rest}",
            "task": f"{verb.lower()} {rest}",
            "summary": summary,
            "signature": d.signature.removeprefix("def ").removeprefix("async def "),
        }
        yield Item(f"python:{d.group}", _key(d), fields)


def _explain(functions) -> Iterator[Item]:
    low, high = CODE_LINES
    for d in functions:
        lines = d.code.strip().split("\n")
        if low <= len(lines) <= high and len(d.code) <= CODE_CHARS and FENCE not in d.code:
            code = f"{FENCE}python\n{d.code.strip()}\n{FENCE}"
            yield Item(f"python:{d.group}", _key(d), {"code": code})
