"""Everyday requests (lists, emails, recipes, how-to, facts), templates over real nouns.

The nouns are this machine's: cities and countries from tzdata, tasks from Debian synopses
("tool to convert PDF files to images" -> "convert PDF files to images"), programs with what
they are for. Only the small lists below (ingredients, recipients, meals) are written here.
Groups follow the noun: ``place:<name>``, ``debian:<source>``, ``food:<ingredient>``,
``topic:<topic>``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

from spec_decode.data.debian import Description
from spec_decode.distill.prompts import TRAIN_TOPICS
from spec_decode.distill.requests.packages import group_of, is_program, synopsis_need
from spec_decode.distill.requests.request import Category, Item, Phrasing, article, choose

LISTS = Category("lists", (
    Phrasing("packing", "Give me a packing list for a week in {place}."),
    Phrasing("things_to_do", "List ten things to do in {place}."),
    Phrasing("moving", "Make a checklist for moving to {place}."),
    Phrasing("forget", "What should I not forget when I travel to {place}?", held_out=True),
), per_item=3)  # fmt: skip
EMAILS = Category("emails", (
    Phrasing("short", "Write a short email to {recipient} {subject}."),
    Phrasing("polite", "Draft a polite email to {recipient} {subject}."),
    Phrasing("brief", "Help me write an email to {recipient} {subject}. Keep it brief."),
    Phrasing("friendly", "Can you write a friendly message to {recipient} {subject}?",
             held_out=True),
))  # fmt: skip
RECIPES = Category("recipes", (
    Phrasing("recipe", "Give me a recipe for {dish}."),
    Phrasing("how_cook", "How do I cook {dish}?"),
    Phrasing("ingredients", "What do I need to make {dish}? List the ingredients and steps."),
    Phrasing("tonight", "I want to cook {dish} tonight. Where do I start?", held_out=True),
), per_item=2)  # fmt: skip
HOW_TO = Category("how_to", (
    Phrasing("how_do_i", "How do I {task}?"),
    Phrasing("easiest", "What's the easiest way to {task} on Linux?"),
    Phrasing("steps", "Explain step by step how to {task}."),
    Phrasing("new", "I'm new to Linux. How can I {task}?", held_out=True),
), per_item=2)  # fmt: skip
FACTS = Category("facts", (
    Phrasing("five_facts", "Tell me five facts about {topic}."),
    Phrasing("known_for", "What is {topic} known for?"),
    Phrasing("history", "Give me a short history of {topic}."),
    Phrasing("surprise", "What would surprise someone new to {topic}?", held_out=True),
), per_item=3)  # fmt: skip
CATEGORIES = (LISTS, EMAILS, RECIPES, HOW_TO, FACTS)

INGREDIENTS = (
    "apples", "aubergine", "beans", "beef", "broccoli", "butter", "cabbage", "carrots",
    "cheese", "chicken", "chickpeas", "coconut milk", "courgettes", "eggs", "fish", "garlic",
    "ginger", "leeks", "lemons", "lentils", "mushrooms", "noodles", "oats", "onions", "pasta",
    "peppers", "pork", "potatoes", "prawns", "rice", "salmon", "spinach", "sweet potatoes",
    "tofu", "tomatoes", "yoghurt",
)  # fmt: skip
MEALS = ("breakfast", "lunch", "dinner", "snack", "soup", "salad")
RECIPIENTS = (
    "my manager", "a colleague", "my landlord", "a customer", "my neighbour", "my team",
    "an old friend", "my teacher", "the IT department", "a hotel",
)  # fmt: skip
_TASK = re.compile(
    r"^(?:[\w+-]+ ){0,3}?(?:tools?|utility|utilities|program|script|application|daemon|command)"
    r" to ([a-z]+ .{6,80})$",
    re.IGNORECASE,
)


def synopsis_task(synopsis: str) -> str | None:
    """The task a "tool to <task>" synopsis names: "tool to convert PDF files to images -
    binaries" -> "convert PDF files to images"."""
    head = synopsis.split(" - ")[0].split(" (")[0].strip().rstrip(".")
    match = _TASK.match(head)
    return match.group(1) if match and match.group(1)[0].islower() else None


def items(
    english: list[Description],
    sources: dict[str, str],
    cities: list[str],
    countries: list[str],
) -> dict[str, Iterator[Item]]:
    places = sorted(set(cities) | set(countries))
    return {
        LISTS.name: (Item(f"place:{p}", p, {"place": p}) for p in places),
        EMAILS.name: _emails(english, sources, cities),
        RECIPES.name: _recipes(countries),
        HOW_TO.name: _how_to(english, sources),
        FACTS.name: (
            Item(group, topic, {"topic": topic})
            for group, topic in [(f"place:{p}", p) for p in places]
            + [(f"topic:{t}", t) for t in TRAIN_TOPICS]
        ),
    }


def _emails(english, sources, cities) -> Iterator[Item]:
    for d in english:
        need = synopsis_need(d.synopsis)
        if need is not None and is_program(d.package):
            subject = f"asking for {d.package} ({article(need)} {need}) on my work computer"
            fields = {"recipient": choose(RECIPIENTS, d.package), "subject": subject}
            yield Item(group_of(d.package, sources), d.package, fields)
    for city in cities:
        fields = {"recipient": choose(RECIPIENTS, city), "subject": f"about my trip to {city}"}
        yield Item(f"place:{city}", city, fields)


def _recipes(countries) -> Iterator[Item]:
    for a, b in itertools.combinations(INGREDIENTS, 2):
        yield Item(f"food:{a}", f"{a}+{b}", {"dish": f"a dish with {a} and {b}"})
    for food, meal in itertools.product(INGREDIENTS, MEALS):
        yield Item(f"food:{food}", f"{meal}:{food}", {"dish": f"a quick {meal} with {food}"})
    for country in countries:
        yield Item(f"place:{country}", country, {"dish": f"a traditional dish from {country}"})


def _how_to(english, sources) -> Iterator[Item]:
    seen: set[str] = set()
    for d in english:
        task = synopsis_task(d.synopsis)
        if task is not None and task.lower() not in seen:
            seen.add(task.lower())
            yield Item(group_of(d.package, sources), d.package, {"task": task})
