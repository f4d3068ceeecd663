"""Requests about Debian packages, worded over apt's English descriptions.

Every item of one source package shares the group ``debian:<source>``, so ``foo`` and
``foo-doc`` are held out (or trained on) together, in every category and in translation too.
Library, development and debug packages are left out of the questions about a package's use:
users ask about programs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from spec_decode.data.debian import Description
from spec_decode.distill.requests.request import Category, Item, Phrasing, article, sentence_start

PURPOSE = Category("package_purpose", (
    Phrasing("what_for", "What is the Debian package {name} for?"),
    Phrasing("what_does", "What does the {name} package do?"),
    Phrasing("when_use", "Tell me about {name}. When would I use it?"),
    Phrasing("do_i_need", "apt lists a package called {name}. Do I need it?", held_out=True),
))  # fmt: skip
SUMMARY = Category("package_summary", (
    Phrasing("summarise", "Summarise this description:\n\n{long}"),
    Phrasing("one_sentence", "Give me a one-sentence summary of this text:\n\n{long}"),
    Phrasing("tldr", "TL;DR:\n\n{long}"),
    Phrasing("beginner", "Explain this to a beginner in two sentences:\n\n{long}", held_out=True),
))  # fmt: skip
CHOICE = Category("package_choice", (
    Phrasing("which_provides", "Which Debian package provides {a} {need}?"),
    Phrasing("looking_for", "I'm looking for {a} {need}. Which package should I install?"),
    Phrasing("is_there", "Is there {a} {need} in Debian?"),
    Phrasing("recommend", "Recommend a package: I need {a} {need}.", held_out=True),
))  # fmt: skip
COMPARE = Category("package_compare", (
    Phrasing("difference", "What is the difference between the Debian packages {a} and {b}?"),
    Phrasing("which_of", "Should I install {a} or {b}? What does each contain?"),
), held_out=True)  # fmt: skip
CATEGORIES = (PURPOSE, SUMMARY, CHOICE, COMPARE)

# Names of packages nobody asks about by name: libraries, language bindings, build parts.
_NOT_PROGRAMS = re.compile(
    r"^(lib|golang-|node-|r-cran-|r-bioc-|haskell-|ocaml-|elpa-|fonts-|texlive-|python3?-|ruby-|"
    r"php|tryton-modules-|gir1|lua-|octave-|firmware-|linux-|qml-|jython|gnome-shell-ext)|"
    r"(-dev|-doc|-dbg|-dbgsym|-data|-common|-perl|-java|-cil|-examples|\d)$"
)
_NOT_NOUNS = frozenset(
    "the a an run manage provide create convert display show make read write get set use "
    "simple add remove documentation".split()
)  # first words after which a synopsis is not "a/an <synopsis>"
SUMMARY_CHARS = (200, 1500)  # long descriptions shorter say nothing, longer ones crowd a prompt


def is_program(package: str) -> bool:
    return not _NOT_PROGRAMS.search(package)


def synopsis_need(synopsis: str) -> str | None:
    """The synopsis as the thing a user needs ("a GNU image manipulation program"), or None
    where it does not read as one singular noun phrase in sentence case."""
    head = synopsis.split(" - ")[0].split(" (")[0].strip().rstrip(".")
    words = head.split(" ")
    first = words[0].lower()
    if len(head) < 8 or first.endswith("s") or first in _NOT_NOUNS or ";" in head:
        return None
    if sum(w[:1].isupper() and w[1:].islower() for w in words[1:]) > 1:  # Title Case
        return None
    noun = re.split(r" (?:for|of|to|with|in|from|on|and|that|using) ", head)[0].split(" ")[-1]
    if noun.endswith("s") and not noun.endswith(("ss", "us", "is")):  # "debug symbols"
        return None
    return sentence_start(head)


def group_of(package: str, sources: dict[str, str]) -> str:
    return "debian:" + sources.get(package, package)


def items(english: list[Description], sources: dict[str, str]) -> dict[str, Iterator[Item]]:
    """Category name -> its items."""
    return {
        PURPOSE.name: _purpose(english, sources),
        SUMMARY.name: _summary(english, sources),
        CHOICE.name: _choice(english, sources),
        COMPARE.name: _compare(english, sources),
    }


def _purpose(english, sources) -> Iterator[Item]:
    for d in english:
        if is_program(d.package):
            yield Item(group_of(d.package, sources), d.package, {"name": d.package})


def _summary(english, sources) -> Iterator[Item]:
    low, high = SUMMARY_CHARS
    for d in english:
        if low <= len(d.long) <= high:
            yield Item(group_of(d.package, sources), d.package, {"long": d.long})


def _choice(english, sources) -> Iterator[Item]:
    for d in english:
        need = synopsis_need(d.synopsis)
        if need is not None:
            fields = {"need": need, "a": article(need)}
            yield Item(group_of(d.package, sources), d.package, fields)


def _compare(english, sources) -> Iterator[Item]:
    """Two binary packages of one source with different synopses (``foo`` vs ``foo-gtk``)."""
    by_group: dict[str, list[Description]] = {}
    for d in english:
        by_group.setdefault(group_of(d.package, sources), []).append(d)
    for group, ds in by_group.items():
        programs = [d for d in ds if is_program(d.package)]
        for a, b in zip(programs, programs[1:], strict=False):
            if a.synopsis != b.synopsis:
                yield Item(group, f"{a.package}|{b.package}", {"a": a.package, "b": b.package})
