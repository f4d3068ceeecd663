"""Translation requests: German and French UI strings and package descriptions into English,
English ones into German.

Texts come from the gettext catalogs (group ``gettext:<domain>``: one program's strings share
wording) and from Debian descriptions paired by md5 (group ``debian:<source>``, the same group
the package questions use).
"""

from __future__ import annotations

from collections.abc import Iterator

from spec_decode.data import debian
from spec_decode.distill.requests.packages import group_of
from spec_decode.distill.requests.request import Category, Item, Phrasing

LANGUAGE_NAMES = {"de": "German", "fr": "French"}
TO_ENGLISH = Category("translate_to_en", (
    Phrasing("into_english", "Translate into English: {text}"),
    Phrasing("mean", 'What does "{short}" mean in English?'),
    Phrasing("this_text", "Translate this {language} text into English:\n\n{text}"),
    Phrasing("understand", "Can you help me understand this {language}? {text}", held_out=True),
))  # fmt: skip
FROM_ENGLISH = Category("translate_from_en", (
    Phrasing("into_german", "Translate into German: {text}"),
    Phrasing("say", 'How do you say "{short}" in German?'),
    Phrasing("this_text", "Translate this English text into German:\n\n{text}"),
    Phrasing("app", "I need the German version of this for our app: {text}", held_out=True),
))  # fmt: skip
CATEGORIES = (TO_ENGLISH, FROM_ENGLISH)
TEXT_CHARS = (4, 600)
SHORT_CHARS = 80  # a text quoted inside a question ("What does ... mean?") is at most this


def text_fields(text: str) -> dict[str, str]:
    """``text``, and ``short`` too when it is short enough to quote in a question."""
    text = text.strip()
    return {"text": text, "short": text} if len(text) <= SHORT_CHARS else {"text": text}


def usable(text: str) -> bool:
    """Long enough to translate, short enough for a prompt, and mostly words."""
    low, high = TEXT_CHARS
    if not low <= len(text) <= high:
        return False
    letters = sum(map(str.isalpha, text))
    return letters >= 3 and letters >= len(text) / 2


def items(
    descriptions: dict[str, list[debian.Description]],
    sources: dict[str, str],
    ui: dict[str, list[debian.Pair]],
) -> dict[str, Iterator[Item]]:
    return {
        TO_ENGLISH.name: _to_english(descriptions, sources, ui),
        FROM_ENGLISH.name: _from_english(descriptions, sources, ui),
    }


def _pairs(descriptions, sources, ui, lang) -> Iterator[tuple[str, str, debian.Pair]]:
    """(group, key, pair) of every English -> ``lang`` pair, gettext first."""
    for p in ui.get(lang, ()):
        yield f"gettext:{p.group}", f"{lang}:{p.group}:{p.source}", p
    for p in debian.translation_pairs(descriptions["en"], descriptions[lang], sources):
        yield group_of(p.package, sources), f"{lang}:{p.package}:{p.kind}", p


def _to_english(descriptions, sources, ui) -> Iterator[Item]:
    for lang, language in LANGUAGE_NAMES.items():
        for group, key, p in _pairs(descriptions, sources, ui, lang):
            if usable(p.target):
                yield Item(group, key, {**text_fields(p.target), "language": language})


def _from_english(descriptions, sources, ui) -> Iterator[Item]:
    for group, key, p in _pairs(descriptions, sources, ui, "de"):
        if usable(p.source):
            yield Item(group, key, text_fields(p.source))
