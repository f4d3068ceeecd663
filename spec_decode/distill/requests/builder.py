"""All request sources worded, split into training and a held-out set that training never sees.

The split is by group first: a group (a Debian source package, a gettext domain, a top-level
Python package, a place, a problem) is held out by a stable hash of its name
(``data.splits.split_of``, the name without its ``debian:``-style prefix), so the assignment is
the same on every machine and run and agrees with the corpus' (``data.corpus``):
``held_out=0.1`` holds out exactly the corpus' validation and test groups (0.05 + 0.05, same
salt). On top of that, held-out phrasings and held-out categories word only held-out groups.

    group held out?   phrasing / category held out?   request goes to
    no                no                              train
    no                yes                             nowhere (dropped)
    yes               either                          held_out

Training then loses every request whose text (``normalise``d) is also a held-out one, contains
or equals an ``exclude`` prompt (the CLI demo's), or names a topic of the older held-out
prompts (``prompts.mentions_held_out``); the result is checked before it is returned.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

from spec_decode.data.splits import check_fractions, group_unit, split_of
from spec_decode.distill.prompts import mentions_held_out
from spec_decode.distill.requests import arithmetic, code, everyday, packages, translation
from spec_decode.distill.requests.inputs import Inputs
from spec_decode.distill.requests.request import Category, Item, Request, choose, normalise

CATEGORIES: tuple[Category, ...] = (
    packages.CATEGORIES + translation.CATEGORIES + code.CATEGORIES + arithmetic.CATEGORIES
    + everyday.CATEGORIES
)  # fmt: skip
SPLITS = ("train", "held_out")


@dataclasses.dataclass(frozen=True)
class BuildConfig:
    """What decides the requests besides the inputs.

    ``seed`` picks phrasings, the generated problems and the order; the group split depends
    only on ``held_out`` and ``salt``. ``per_category`` / ``held_out_per_category`` cap each
    category (None: all), taking a seed-fixed sample.
    """

    seed: int = 0
    held_out: float = 0.1
    salt: str = "spec_decode"
    generated: int = 20_000  # arithmetic problems and unit conversions each
    per_category: int | None = None
    held_out_per_category: int | None = None

    def __post_init__(self):
        check_fractions(0.0, self.held_out)
        if not 0.0 < self.held_out:
            raise ValueError(f"held_out={self.held_out!r} is not allowed: a fraction in (0, 1)")
        for name in ("per_category", "held_out_per_category"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ValueError(f"{name}={value!r} is not allowed: a positive int or None")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed={self.seed!r} is not allowed: a non-negative int")


@dataclasses.dataclass(frozen=True)
class RequestSet:
    train: tuple[Request, ...]
    held_out: tuple[Request, ...]
    dropped: dict[str, int]  # why -> training requests left out

    def split(self, name: str) -> tuple[Request, ...]:
        if name not in SPLITS:
            raise ValueError(f"split={name!r} is not allowed: one of {SPLITS}")
        return self.train if name == "train" else self.held_out

    def by_category(self, split: str = "held_out") -> dict[str, list[str]]:
        """Category -> prompts of ``split``: what alpha by category is measured on."""
        out: dict[str, list[str]] = {c.name: [] for c in CATEGORIES}
        for r in self.split(split):
            out[r.category].append(r.text)
        return {k: v for k, v in out.items() if v}

    def to_json(self) -> dict:
        splits = {split: [r.to_json() for r in self.split(split)] for split in SPLITS}
        return {**splits, "dropped": self.dropped}

    @classmethod
    def from_json(cls, value: dict) -> RequestSet:
        """The inverse of ``to_json``: a set written on another machine (its split checked)."""
        out = cls(*(tuple(Request(**r) for r in value[s]) for s in SPLITS), value["dropped"])
        for split in SPLITS:
            wrong = [r.key for r in out.split(split) if r.split != split]
            if wrong:
                raise ValueError(f"requests {wrong[:3]} are in {split!r} but say otherwise")
        return out

    def counts(self) -> dict[str, dict[str, int]]:
        """Category -> {"train": n, "held_out": m}."""
        out = {c.name: dict.fromkeys(SPLITS, 0) for c in CATEGORIES}
        for split in SPLITS:
            for category, n in Counter(r.category for r in self.split(split)).items():
                out[category][split] = n
        return out


def is_held_out(group: str, config: BuildConfig) -> bool:
    """Whether ``group`` ("debian:hello") is held out: its bare name's hash is below the
    fraction (the corpus' validation + test groups when held_out = their sum)."""
    return _held_out(group, config.held_out, config.salt)


@functools.lru_cache(maxsize=1 << 20)
def _held_out(group: str, fraction: float, salt: str) -> bool:
    name = group.partition(":")[2] or group
    return split_of(name, 0.0, fraction, salt) == "test"


def category_items(inputs: Inputs, config: BuildConfig) -> dict[str, Iterator[Item]]:
    english = inputs.descriptions["en"]
    out = {}
    out.update(packages.items(english, inputs.sources))
    out.update(translation.items(inputs.descriptions, inputs.sources, inputs.ui))
    out.update(code.items(inputs.functions))
    out.update(arithmetic.items(config.seed, config.generated))
    out.update(everyday.items(english, inputs.sources, inputs.cities, inputs.countries))
    return out


def word(
    category: Category, items: Iterable[Item], config: BuildConfig
) -> Iterator[tuple[Request, str]]:
    """Each item worded by ``per_item`` phrasings its group may use (a held-out category:
    only items of held-out groups), each text once; with the text ``normalise``d."""
    seen: set[str] = set()
    for item in items:
        held = is_held_out(item.group, config)
        if category.held_out and not held:
            continue
        allowed = category.allowed(held, item.fields)
        count = min(category.per_item, len(allowed))
        if count == 0:
            continue
        chosen = choose(allowed, config.seed, category.name, item.key, count=count)
        for phrasing in chosen if count > 1 else (chosen,):
            text = phrasing.template.format(**item.fields)
            if (norm := normalise(text)) in seen:
                continue
            seen.add(norm)
            split = "held_out" if held else "train"
            yield Request(text, category.name, phrasing.name, item.group, item.key, split,
                          item.answer), norm  # fmt: skip


def _order(requests: Iterable[Request], seed: int) -> list[Request]:
    """A seed-fixed shuffle that does not depend on which other requests exist."""
    return sorted(requests, key=lambda r: group_unit(f"{r.category}\x00{r.key}", f"order{seed}"))


def _cap(requests: list[Request], limit: int | None) -> list[Request]:
    if limit is None:
        return requests
    taken: Counter = Counter()
    out = []
    for r in requests:
        if taken[r.category] < limit:
            taken[r.category] += 1
            out.append(r)
    return out


def build_requests(
    inputs: Inputs, config: BuildConfig = BuildConfig(), exclude: Sequence[str] = ()
) -> RequestSet:
    """Every category's requests, split; ``exclude``: prompts never to train on."""
    worded: list[tuple[Request, str]] = []
    items = category_items(inputs, config)
    for category in CATEGORIES:
        worded.extend(word(category, items[category.name], config))
    held = _order((r for r, _ in worded if r.split == "held_out"), config.seed)
    held_texts = {norm for r, norm in worded if r.split == "held_out"}
    banned = [normalise(t) for t in exclude]
    dropped: Counter = Counter()
    kept = []
    for r, norm in worded:
        if r.split == "train":
            why = _why_not_train(r, norm, held_texts, banned)
            if why:
                dropped[why] += 1
            else:
                kept.append(r)
    train = _order(kept, config.seed)
    out = RequestSet(
        tuple(_cap(train, config.per_category)),
        tuple(_cap(held, config.held_out_per_category)),
        dict(dropped),
    )
    check_request_set(out, config, exclude)
    return out


def _why_not_train(
    request: Request, norm: str, held_texts: set[str], banned: list[str]
) -> str | None:
    if norm in held_texts:
        return "same text as a held-out request"
    if any(b and b in norm for b in banned):
        return "contains an excluded prompt"
    if mentions_held_out(request.text):
        return "names a held-out topic of distill.prompts"
    return None


def check_request_set(requests: RequestSet, config: BuildConfig, exclude: Sequence[str]) -> None:
    """Raise AssertionError if training touches anything held out or excluded."""
    held_out_phrasings = {(c.name, p.name) for c in CATEGORIES for p in c.phrasings if p.held_out}
    held_out_categories = {c.name for c in CATEGORIES if c.held_out}
    banned = {normalise(t) for t in exclude}
    for r in requests.train:
        assert not is_held_out(r.group, config), f"held-out group {r.group} in training"
        assert (r.category, r.phrasing) not in held_out_phrasings, f"held-out phrasing: {r}"
        assert r.category not in held_out_categories, f"held-out category: {r}"
        assert normalise(r.text) not in banned, f"excluded prompt in training: {r.text!r}"
