"""English -> German (or any language) UI strings from the system's gettext catalogs.

Installed programs ship ``<localedir>/<lang>/LC_MESSAGES/<domain>.mo``; each maps an English
msgid to its translation. The stdlib ``gettext`` reads them. The domain (``coreutils``,
``apt``...) is the group that splits keep together: one program's strings share wording.
"""

from __future__ import annotations

import dataclasses
import gettext
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from spec_decode.data.debian import Pair


@dataclasses.dataclass(frozen=True)
class Catalogs:
    """The catalogs found for a language, and those the stdlib could not read (with why)."""

    paths: list[Path]
    skipped: list[tuple[Path, str]] = dataclasses.field(default_factory=list)


def locale_dirs() -> list[Path]:
    """Candidate locale directories, most specific first, each once (by real path).

    ``TEXTDOMAINDIR``, the interpreter's prefixes, then the system ones: an interpreter built
    under its own prefix (pyenv, conda) has a ``gettext`` default that is not where the
    system's programs put their catalogs.
    """
    candidates = [os.environ.get("TEXTDOMAINDIR", "")]
    candidates += [os.path.join(p, "share", "locale") for p in (sys.prefix, sys.base_prefix)]
    candidates += ["/usr/share/locale", "/usr/local/share/locale", gettext._default_localedir]
    out: list[Path] = []
    for c in candidates:
        if c and os.path.isdir(c) and Path(c).resolve() not in {p.resolve() for p in out}:
            out.append(Path(c))
    return out


def find_catalogs(lang: str = "de", dirs: Iterable[str | Path] | None = None) -> list[Path]:
    """Every ``<dir>/<lang>/LC_MESSAGES/*.mo``, one per domain (the first directory wins),
    sorted by domain."""
    if not lang or "/" in lang:
        raise ValueError(f"lang={lang!r} is not allowed: use a locale name such as 'de'")
    by_domain: dict[str, Path] = {}
    for d in locale_dirs() if dirs is None else dirs:
        for path in sorted(Path(d, lang, "LC_MESSAGES").glob("*.mo")):
            by_domain.setdefault(path.stem, path)
    return [by_domain[k] for k in sorted(by_domain)]


def catalog_strings(path: str | Path) -> dict[str, str]:
    """msgid -> msgstr of one catalog, without the header, empty or untranslated strings.

    A plural entry gives its singular: ``_catalog`` keeps the English singular with each form
    (the English plural is not stored), so form 0 is the one whose source text we know. A
    message context (``ctxt\\x04msgid``) is dropped from the source text.
    """
    with open(path, "rb") as f:
        catalog = gettext.GNUTranslations(f)._catalog
    out: dict[str, str] = {}
    for key, msgstr in catalog.items():
        if isinstance(key, tuple):
            key, form = key
            if form != 0:
                continue
        msgid = key.rpartition("\x04")[2]
        if msgid and msgstr and msgstr.strip() and msgstr != msgid:
            out.setdefault(msgid, msgstr)
    return out


def read_catalogs(
    paths: Iterable[Path],
) -> tuple[dict[str, dict[str, str]], list[tuple[Path, str]]]:
    """``{domain: strings}`` and the catalogs the stdlib rejected (e.g. a non-UTF-8 header)."""
    strings: dict[str, dict[str, str]] = {}
    skipped: list[tuple[Path, str]] = []
    for path in paths:
        try:
            strings[path.stem] = catalog_strings(path)
        except (OSError, UnicodeDecodeError, ValueError) as e:
            skipped.append((path, f"{type(e).__name__}: {e}"[:200]))
    return strings, skipped


def ui_pairs(
    lang: str = "de", dirs: Iterable[str | Path] | None = None, limit: int | None = None
) -> tuple[list[Pair], Catalogs]:
    """English -> ``lang`` UI string pairs, grouped by domain, in domain then catalog order.

    Each (English, translation) pair is kept once (the first domain that has it).
    """
    paths = find_catalogs(lang, dirs)
    strings, skipped = read_catalogs(paths)
    pairs: list[Pair] = []
    seen: set[tuple[str, str]] = set()
    for domain, table in strings.items():
        for msgid, msgstr in table.items():
            if (msgid, msgstr) in seen:
                continue
            seen.add((msgid, msgstr))
            pairs.append(Pair(domain, domain, "ui", msgid, msgstr))
            if limit is not None and len(pairs) >= limit:
                return pairs, Catalogs(paths, skipped)
    return pairs, Catalogs(paths, skipped)
