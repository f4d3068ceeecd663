"""spec_decode.distill.requests on this machine's real data: the held-out split shares nothing
with training, the demo's prompts never reach training, a seed fixes everything, every category
is where it should be, and the generated sums have right answers.

The inputs are read once (the first 10,000 English descriptions, a few thousand German and
French ones, UI strings and functions: a build takes seconds); it skips without apt's lists.
"""

from __future__ import annotations

import dataclasses
import operator
import re
from collections import Counter
from decimal import Decimal

import pytest

from spec_decode.app.demo import PROMPTS as DEMO_PROMPTS
from spec_decode.data import debian, docstrings, gettext_pairs
from spec_decode.distill.requests import (
    CATEGORIES,
    BuildConfig,
    InputConfig,
    Inputs,
    build_requests,
    is_held_out,
    load_inputs,
    normalise,
)
from spec_decode.distill.requests.builder import _cap, check_request_set
from spec_decode.distill.requests.inputs import places

SMALL = 2000
GENERATED = 1000


@pytest.fixture(scope="module")
def inputs() -> Inputs:
    try:
        english = debian.descriptions("en", limit=5 * SMALL)
        other = {lang: debian.descriptions(lang, limit=SMALL) for lang in ("de", "fr")}
    except FileNotFoundError as error:
        pytest.skip(f"no apt Translation lists on this machine: {error}")
    ui = {lang: gettext_pairs.ui_pairs(lang, None, SMALL)[0] for lang in ("de", "fr")}
    roots = [docstrings.default_roots()[0]]  # the standard library
    cities, countries = places()
    return Inputs({"en": english, **other}, debian.package_sources(), ui,
                  docstrings.collect_docstrings(roots, SMALL), cities, countries)  # fmt: skip


@pytest.fixture(scope="module")
def requests(inputs):
    return build_requests(inputs, BuildConfig(generated=GENERATED), exclude=DEMO_PROMPTS)


def test_held_out_groups_phrasings_and_texts_never_reach_training(requests):
    config = BuildConfig()
    train_groups = {r.group for r in requests.train}
    held_groups = {r.group for r in requests.held_out}
    assert train_groups and held_groups and not train_groups & held_groups
    assert all(is_held_out(g, config) for g in held_groups)
    assert not any(is_held_out(g, config) for g in train_groups)
    assert not {normalise(r.text) for r in requests.train} & {
        normalise(r.text) for r in requests.held_out
    }
    held_phrasings = {(c.name, p.name) for c in CATEGORIES for p in c.phrasings if p.held_out}
    train_phrasings = {(r.category, r.phrasing) for r in requests.train}
    assert not train_phrasings & held_phrasings
    # Each held-out phrasing words some held-out request, so its alpha can be measured.
    assert held_phrasings <= {(r.category, r.phrasing) for r in requests.held_out}


def test_one_source_package_is_held_out_in_every_category(requests):
    """A Debian source's packages, descriptions and translations share one split."""
    split_of = {}
    for r in requests.train + requests.held_out:
        if r.group.startswith("debian:"):
            assert split_of.setdefault(r.group, r.split) == r.split, r
    categories = {r.category for r in requests.held_out if r.group.startswith("debian:")}
    assert {"package_purpose", "translate_to_en", "how_to"} <= categories


def test_demo_prompts_and_excluded_prompts_never_reach_training(inputs, requests):
    demo = [normalise(p) for p in DEMO_PROMPTS]
    assert not [r.text for r in requests.train if any(d in normalise(r.text) for d in demo)]
    # Excluding a prompt the builder would train on takes it out, and says so.
    victim = requests.train[len(requests.train) // 2]
    again = build_requests(inputs, BuildConfig(generated=GENERATED), exclude=[victim.text.upper()])
    assert victim.text not in {r.text for r in again.train}
    assert again.dropped["contains an excluded prompt"] >= 1
    # The final check catches a training set that holds an excluded prompt.
    forged = dataclasses.replace(requests, train=requests.train + (victim,))
    with pytest.raises(AssertionError, match="excluded prompt"):
        check_request_set(forged, BuildConfig(), [victim.text])


def test_a_seed_fixes_every_request(inputs, requests):
    same = build_requests(inputs, BuildConfig(generated=GENERATED), exclude=DEMO_PROMPTS)
    assert same == requests
    other = build_requests(inputs, BuildConfig(generated=GENERATED, seed=1), exclude=DEMO_PROMPTS)
    assert [r.text for r in other.train] != [r.text for r in requests.train]
    # The group split does not move with the seed: only the salt and fraction decide it.
    split = lambda rs: {(r.category, r.key): r.split for r in rs.train + rs.held_out}
    before, after = split(requests), split(other)
    common = before.keys() & after.keys()
    assert len(common) > 0.9 * len(before)
    assert all(before[k] == after[k] for k in common)


def test_every_category_is_in_both_splits_or_held_out_whole(requests):
    counts = requests.counts()
    assert set(counts) == {c.name for c in CATEGORIES}
    for c in CATEGORIES:
        assert counts[c.name]["held_out"] > 0, c.name
        assert (counts[c.name]["train"] > 0) != c.held_out, (c.name, counts[c.name])
    by_category = requests.by_category("held_out")
    assert sum(len(v) for v in by_category.values()) == len(requests.held_out)
    assert set(by_category["code_tests"]) <= {r.text for r in requests.held_out}


def test_caps_take_the_first_of_each_category_in_the_seed_order(requests):
    capped = _cap(list(requests.train), 50)
    counts = Counter(r.category for r in capped)
    assert counts == {k: min(50, n["train"]) for k, n in requests.counts().items() if n["train"]}
    kept = set(capped)
    assert capped == [r for r in requests.train if r in kept]  # the order is kept


OPERATORS = {"+": operator.add, "-": operator.sub, "×": operator.mul, "/": operator.truediv}
# The oracle's own definitions: metres, kilograms, litres, seconds, metres per second.
FACTORS = {
    "km": 1000.0, "m": 1.0, "cm": 0.01, "mi": 1609.344, "ft": 0.3048, "in": 0.0254,
    "kg": 1.0, "g": 0.001, "lb": 0.45359237, "oz": 0.45359237 / 16, "L": 1.0, "mL": 0.001,
    "gal": 3.785411784, "d": 86400.0, "h": 3600.0, "min": 60.0, "s": 1.0, "km/h": 1 / 3.6,
    "mph": 0.44704, "m/s": 1.0,
}  # fmt: skip


def _kelvin(value: float, unit: str) -> float:
    return {"°C": value + 273.15, "°F": (value - 32) * 5 / 9 + 273.15, "K": value}[unit]


def _from_kelvin(value: float, unit: str) -> float:
    return {"°C": value - 273.15, "°F": (value - 273.15) * 9 / 5 + 32, "K": value}[unit]


def _oracle(request) -> float:
    """The answer recomputed from the text alone (the symbol phrasing of conversions)."""
    text = request.text
    if request.category == "arithmetic":
        if m := re.search(r"(\d+)(?:%| percent) of (\d+)", text):
            return int(m[1]) * int(m[2]) / 100
        words = {"plus": "+", "minus": "-", "times": "×", "divided by": "/"}
        m = re.search(r"(\d+) (\+|-|×|/|plus|minus|times|divided by) (\d+)", text)
        return OPERATORS[words.get(m[2], m[2])](int(m[1]), int(m[3]))
    m = re.fullmatch(r"What is ([\d.]+) (\S+) in (\S+)\?", text)
    value, source, target = float(m[1]), m[2], m[3]
    if source in ("°C", "°F", "K"):
        return _from_kelvin(_kelvin(value, source), target)
    return value * FACTORS[source] / FACTORS[target]


def test_sums_and_conversions_have_right_answers(requests):
    checked = {"arithmetic": 0, "unit_conversion": 0}
    for r in requests.train + requests.held_out:
        if r.category == "unit_conversion" and r.phrasing != "symbols":
            continue
        if r.category in checked:
            answer = Decimal(r.answer)
            assert abs(float(answer) - _oracle(r)) <= 0.005 + 1e-9, r
            assert -answer.as_tuple().exponent <= 2, r  # at most two decimals
            checked[r.category] += 1
    assert min(checked.values()) > 100, checked


def test_a_missing_apt_list_names_the_command_that_fetches_it(tmp_path):
    with pytest.raises(ValueError, match=re.escape(debian.UPDATE_COMMAND)) as error:
        load_inputs(InputConfig(lists_dir=str(tmp_path)))
    assert str(tmp_path) in str(error.value) and "Translation-en" in str(error.value)
    (tmp_path / "x_main_i18n_Translation-en").write_text("Package: a\nDescription-en: b\n")
    with pytest.raises(ValueError, match="Translation-de"):
        load_inputs(InputConfig(lists_dir=str(tmp_path)))


def test_bad_config_values_are_named():
    with pytest.raises(ValueError, match="held_out=0"):
        BuildConfig(held_out=0.0)
    with pytest.raises(ValueError, match="per_category=-1"):
        BuildConfig(per_category=-1)
    with pytest.raises(ValueError, match="limit=0"):
        InputConfig(limit=0)
