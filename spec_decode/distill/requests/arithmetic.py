"""Sums and unit conversions made by code, each with its exact answer; a seed fixes them.

Problem i of a seed draws its numbers from its own generator (``seed``, category, i), so a
problem does not depend on how many are asked for. Every problem is its own group: held-out
problems are other numbers, and a held-out phrasing words only those.

    kind       expression     words                answer
    add        4817 + 206     4817 plus 206        5023
    percent    15% of 340     15 percent of 340    51
    length     12 km -> mi                         7.46   (rounded half up to 2 decimals)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import numpy as np

from spec_decode.distill.requests.request import Category, Item, Phrasing

ARITHMETIC = Category("arithmetic", (
    Phrasing("what_is", "What is {expression}?"),
    Phrasing("calculate", "Calculate {expression}."),
    Phrasing("in_words", "What is {words}?"),
    Phrasing("steps", "Work out {expression} step by step."),
    Phrasing("quick", "Quick question: {words}, what do I get?", held_out=True),
))  # fmt: skip
CONVERSION = Category("unit_conversion", (
    Phrasing("convert", "Convert {value} {source} to {target}."),
    Phrasing("how_many", "How many {target} is {value} {source}?"),
    Phrasing("symbols", "What is {value} {source_symbol} in {target_symbol}?"),
    Phrasing("have", "I have {value} {source}; what is that in {target}?", held_out=True),
))  # fmt: skip
CATEGORIES = (ARITHMETIC, CONVERSION)
OPERATIONS = ("add", "subtract", "multiply", "divide", "percent")
PERCENTS = (5, 10, 12, 15, 20, 25, 30, 40, 50, 75)


@dataclasses.dataclass(frozen=True)
class Unit:
    singular: str
    plural: str
    symbol: str
    scale: Fraction  # one unit in the dimension's base unit
    offset: Fraction = Fraction(0)  # base = value * scale + offset (temperatures)


def _f(text: str) -> Fraction:
    return Fraction(text)


FAHRENHEIT_ZERO = Fraction("273.15") - Fraction(160, 9)  # 0 °F in kelvin: (0 - 32) * 5/9 + 273.15
# Exact definitions (the international mile, foot, inch and pound; the US gallon).
UNITS = {
    "length": (
        Unit("kilometre", "kilometres", "km", _f("1000")),
        Unit("metre", "metres", "m", _f("1")),
        Unit("centimetre", "centimetres", "cm", _f("0.01")),
        Unit("mile", "miles", "mi", _f("1609.344")),
        Unit("foot", "feet", "ft", _f("0.3048")),
        Unit("inch", "inches", "in", _f("0.0254")),
    ),
    "mass": (
        Unit("kilogram", "kilograms", "kg", _f("1")),
        Unit("gram", "grams", "g", _f("0.001")),
        Unit("pound", "pounds", "lb", _f("0.45359237")),
        Unit("ounce", "ounces", "oz", _f("0.45359237") / 16),
    ),
    "volume": (
        Unit("litre", "litres", "L", _f("1")),
        Unit("millilitre", "millilitres", "mL", _f("0.001")),
        Unit("US gallon", "US gallons", "gal", _f("3.785411784")),
    ),
    "temperature": (
        Unit("degree Celsius", "degrees Celsius", "°C", _f("1"), _f("273.15")),
        Unit("degree Fahrenheit", "degrees Fahrenheit", "°F", Fraction(5, 9), FAHRENHEIT_ZERO),
        Unit("kelvin", "kelvin", "K", _f("1")),
    ),
    "time": (
        Unit("day", "days", "d", _f("86400")),
        Unit("hour", "hours", "h", _f("3600")),
        Unit("minute", "minutes", "min", _f("60")),
        Unit("second", "seconds", "s", _f("1")),
    ),
    "speed": (
        Unit("kilometre per hour", "kilometres per hour", "km/h", Fraction(1000, 3600)),
        Unit("mile per hour", "miles per hour", "mph", _f("1609.344") / 3600),
        Unit("metre per second", "metres per second", "m/s", _f("1")),
    ),
}


def decimal_text(value: Fraction, places: int = 2) -> str:
    """``value`` rounded half up to ``places`` decimals, without trailing zeros: 7.5, 51, -3.25."""
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    text = f"{exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def convert(value: Fraction, source: Unit, target: Unit) -> Fraction:
    return (value * source.scale + source.offset - target.offset) / target.scale


def _rng(seed: int, category: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, sum(map(ord, category)), index])


def problem(seed: int, index: int) -> Item:
    """Arithmetic problem ``index`` of ``seed``."""
    rng = _rng(seed, ARITHMETIC.name, index)
    kind = OPERATIONS[int(rng.integers(len(OPERATIONS)))]
    if kind in ("add", "subtract"):
        a, b = sorted(int(x) for x in rng.integers(2, 10_000, 2))[::-1]
        sign, word, answer = ("+", "plus", a + b) if kind == "add" else ("-", "minus", a - b)
    elif kind == "multiply":
        a, b = int(rng.integers(2, 1000)), int(rng.integers(2, 100))
        sign, word, answer = "×", "times", a * b
    elif kind == "divide":
        b, q = int(rng.integers(2, 100)), int(rng.integers(2, 1000))
        a, sign, word, answer = b * q, "/", "divided by", q
    else:
        a, b = PERCENTS[int(rng.integers(len(PERCENTS)))], int(rng.integers(10, 2001))
        fields = {"expression": f"{a}% of {b}", "words": f"{a} percent of {b}"}
        answer = decimal_text(Fraction(a * b, 100))
        return Item(f"arithmetic:{index}", f"{kind}:{index}", fields, answer)
    fields = {"expression": f"{a} {sign} {b}", "words": f"{a} {word} {b}"}
    return Item(f"arithmetic:{index}", f"{kind}:{index}", fields, str(answer))


def conversion(seed: int, index: int) -> Item:
    """Unit conversion ``index`` of ``seed``: a value in one unit, asked in another."""
    rng = _rng(seed, CONVERSION.name, index)
    dimension = sorted(UNITS)[int(rng.integers(len(UNITS)))]
    i, j = rng.choice(len(UNITS[dimension]), 2, replace=False)
    source, target = UNITS[dimension][int(i)], UNITS[dimension][int(j)]
    tenths = int(rng.integers(1, 5000)) * (10 if rng.random() < 0.7 else 1)  # mostly whole
    value = Fraction(tenths, 10)
    fields = {
        "value": decimal_text(value, 1),
        "source": source.singular if value == 1 else source.plural,
        "target": target.plural,
        "source_symbol": source.symbol,
        "target_symbol": target.symbol,
    }
    answer = decimal_text(convert(value, source, target))
    return Item(f"conversion:{index}", f"{dimension}:{index}", fields, answer)


def items(seed: int, count: int) -> dict[str, Iterator[Item]]:
    """``count`` problems of each category."""
    if not isinstance(count, int) or count < 0:
        raise ValueError(f"count={count!r} is not allowed: a non-negative int")
    return {
        ARITHMETIC.name: (problem(seed, i) for i in range(count)),
        CONVERSION.name: (conversion(seed, i) for i in range(count)),
    }
