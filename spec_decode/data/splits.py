"""Deterministic train/validation/test splits by group: a group is never in two splits.

A group (a source package, a gettext domain, a top-level Python package) goes to one split by
a stable hash of its name, so the assignment is the same on every machine and run, does not
depend on which other groups exist, and agrees across corpora built from the same groups: a
package held out of the translation set is held out of the pretraining text as well.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import TypeVar

SPLITS = ("train", "validation", "test")
T = TypeVar("T")


def check_fractions(validation: float, test: float) -> None:
    """Both held-out fractions in [0, 1) and leaving some of the data for training."""
    for name, value in (("validation", validation), ("test", test)):
        if not isinstance(value, int | float) or not 0.0 <= value < 1.0:
            raise ValueError(f"{name}={value!r} is not allowed: a fraction in [0, 1)")
    if validation + test >= 1.0:
        raise ValueError(
            f"validation={validation} and test={test} are not allowed: they sum to "
            f"{validation + test}, leaving nothing for train (their sum must be below 1)"
        )


def group_unit(group: str, salt: str = "spec_decode") -> float:
    """A number in [0, 1) fixed by ``salt`` and ``group`` (sha256, not Python's seeded hash)."""
    digest = hashlib.sha256(f"{salt}\x00{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_of(
    group: str, validation: float = 0.05, test: float = 0.05, salt: str = "spec_decode"
) -> str:
    """The split of one group: ``test`` below ``test``, ``validation`` up to ``test +
    validation``, else ``train``; a group's split changes only if the fractions or salt do."""
    check_fractions(validation, test)
    u = group_unit(group, salt)
    if u < test:
        return "test"
    if u < test + validation:
        return "validation"
    return "train"


def split_by_group(
    records: Iterable[T],
    group: Callable[[T], str],
    validation: float = 0.05,
    test: float = 0.05,
    salt: str = "spec_decode",
) -> dict[str, list[T]]:
    """``{"train": [...], "validation": [...], "test": [...]}`` in the records' own order."""
    check_fractions(validation, test)
    out: dict[str, list[T]] = {name: [] for name in SPLITS}
    cache: dict[str, str] = {}
    for record in records:
        key = group(record)
        if key not in cache:
            cache[key] = split_of(key, validation, test, salt)
        out[cache[key]].append(record)
    return out
