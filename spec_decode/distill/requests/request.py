"""One user request, the phrasings that word it, and the category that owns both.

A category is a named source of items (a package, a UI string, a function, a sum...) and a few
phrasings, each a template over the item's fields. Some phrasings, and some whole categories,
are held out: they word only items of held-out groups, so training never sees that wording.

    category         phrasing            group              text
    package_purpose  what_for            debian:hello       What is the Debian package hello for?
    package_purpose  should_install (h)  debian:gimp        apt lists gimp. Do I need it?
"""

from __future__ import annotations

import dataclasses
import functools
import re
import string
from collections.abc import Iterable, Mapping

from spec_decode.data.splits import group_unit


@dataclasses.dataclass(frozen=True)
class Phrasing:
    """A template over an item's fields (``str.format`` names); ``held_out``: never trained on."""

    name: str
    template: str
    held_out: bool = False

    def fields(self) -> frozenset[str]:
        return _fields(self.template)


@dataclasses.dataclass(frozen=True)
class Category:
    """A named source's phrasings; a ``held_out`` category words only held-out groups.

    ``per_item``: how many different phrasings word each item (more than one where the
    phrasings ask different things of one noun: a packing list, things to do in a city).
    """

    name: str
    phrasings: tuple[Phrasing, ...]
    held_out: bool = False
    per_item: int = 1

    def __post_init__(self):
        names = [p.name for p in self.phrasings]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"phrasings of {self.name!r}: {names} must be distinct and non-empty")
        if not self.held_out and all(p.held_out for p in self.phrasings):
            raise ValueError(f"category {self.name!r} has no phrasing that training may use")
        if not isinstance(self.per_item, int) or self.per_item < 1:
            raise ValueError(f"per_item={self.per_item!r} is not allowed: a positive int")

    def allowed(self, held_out: bool, fields: Iterable[str]) -> tuple[Phrasing, ...]:
        """The phrasings an item of a held-out (or a training) group with these fields may be
        worded with (a phrasing over a field the item lacks is not for it)."""
        have = set(fields)
        return tuple(
            p for p in self.phrasings if (held_out or not p.held_out) and p.fields() <= have
        )


@dataclasses.dataclass(frozen=True)
class Item:
    """What a source yields: the group splits keep together, a stable key, the fields."""

    group: str  # "debian:<source package>", "gettext:<domain>", "python:<top package>", ...
    key: str  # unique within the category: picks the phrasing, orders the selection
    fields: Mapping[str, str]
    answer: str | None = None  # a known answer (arithmetic, conversions)


@dataclasses.dataclass(frozen=True)
class Request:
    """A user message for the target, with where it came from and which split it is in."""

    text: str
    category: str
    phrasing: str
    group: str
    key: str
    split: str  # "train" or "held_out"
    answer: str | None = None

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@functools.cache
def _fields(template: str) -> frozenset[str]:
    return frozenset(f for _, f, _, _ in string.Formatter().parse(template) if f)


def choose(options: tuple, *parts: object, count: int = 1):
    """One of ``options`` (``count`` > 1: that many distinct ones, a tuple), fixed by
    ``parts`` through a stable hash: no RNG state to thread."""
    key = "\x00".join(str(p) for p in parts)
    if count == 1:
        return options[int(group_unit(key, salt="choose") * len(options))]
    ranked = sorted(range(len(options)), key=lambda i: group_unit(f"{key}\x00{i}", "choose"))
    return tuple(options[i] for i in sorted(ranked[:count]))


_WORDS = re.compile(r"\w+")


def normalise(text: str) -> str:
    """Lowercase words only: the form in which two requests count as the same request."""
    return " ".join(_WORDS.findall(text.lower()))


def sentence_start(text: str) -> str:
    """``text`` with its first letter lowercased, unless it starts an acronym (GNU, X11)."""
    if len(text) > 1 and text[1].isupper() or text[:1].isdigit():
        return text
    return text[:1].lower() + text[1:]


def article(phrase: str) -> str:
    """``a`` or ``an`` before ``phrase``, by how its first word is likely said: an editor,
    a utility, an update, an SSH client (an acronym is said letter by letter)."""
    first = phrase.split(" ")[0]
    if len(first) > 1 and first.isupper():
        return "an" if first[0] in "AEFHILMNORSX" else "a"
    lowered = first.lower()
    return "an" if lowered[:1] in "aeio" or lowered[:2] in ("un", "up") else "a"
