"""Debian package descriptions from apt's Translation lists: records, en-xx pairs, summaries.

apt keeps, per language, ``/var/lib/apt/lists/*_i18n_Translation-<lang>.lz4``: RFC822 stanzas

    Package: 0ad
    Description-md5: d943033bedada21853d2ae54a2578a7b
    Description-de: Echtzeit-Strategiespiel ...        <- the synopsis, one line
     0 A.D. ist ein freies, quelloffenes, ...          <- the long description, wrapped
     .                                                 <- a paragraph break
      * a line indented twice is shown verbatim

``Description-md5`` is the md5 of the English description, so a German stanza and the English
one with the same md5 are translations of each other. The lists exist only after apt has fetched
them for those languages (``UPDATE_COMMAND``); nothing here downloads anything.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

UPDATE_COMMAND = "apt-get update -o Acquire::Languages=en,de,fr"
LISTS_DIR = Path("/var/lib/apt/lists")


@dataclasses.dataclass(frozen=True)
class Description:
    """One package description in one language; ``long`` keeps paragraphs as blank lines."""

    package: str
    md5: str
    lang: str
    synopsis: str
    long: str


@dataclasses.dataclass(frozen=True)
class Pair:
    """A source/target text pair; ``group`` is what splits keep together (a source package)."""

    group: str
    package: str
    kind: str  # "synopsis" or "description" (translation), "summary" (long -> synopsis)
    source: str
    target: str


def translation_lists(lang: str, lists_dir: str | Path = LISTS_DIR) -> list[Path]:
    """Every ``*_i18n_Translation-<lang>`` list in ``lists_dir`` (main, security, updates...).

    Raises FileNotFoundError naming the command that fetches the lists when there are none.
    """
    if not lang or not lang.replace("_", "").isalnum():
        raise ValueError(f"lang={lang!r} is not allowed: use a language code such as 'de'")
    lists_dir = Path(lists_dir)
    paths = sorted(lists_dir.glob(f"*_i18n_Translation-{lang}.lz4")) + sorted(
        lists_dir.glob(f"*_i18n_Translation-{lang}")
    )
    if not paths:
        raise FileNotFoundError(
            f"no apt Translation-{lang} list in {lists_dir}: run `{UPDATE_COMMAND}` "
            "(as root) to fetch the English, German and French description lists"
        )
    return paths


def read_list(path: str | Path) -> str:
    """The text of one list: lz4 frames through ``lz4.frame``, else the ``lz4`` command."""
    path = Path(path)
    raw = path.read_bytes()
    if path.suffix == ".lz4":
        raw = _lz4_decompress(raw, path)
    return raw.decode("utf-8", errors="replace")


def _lz4_decompress(raw: bytes, path: Path) -> bytes:
    try:
        import lz4.frame
    except ImportError:
        if shutil.which("lz4") is None:
            raise RuntimeError(
                f"cannot read {path}: install the Python package `lz4` "
                "(pip install lz4) or the `lz4` command (apt-get install lz4)"
            ) from None
        return subprocess.run(["lz4", "-dc"], input=raw, capture_output=True, check=True).stdout
    return lz4.frame.decompress(raw)


def stanzas(text: str) -> Iterator[dict[str, str]]:
    """RFC822 stanzas as ``{field: value}``; continuation lines stay in the value after a newline.

    >>> list(stanzas("Package: a\\nDescription-en: x\\n more\\n\\nPackage: b\\n"))
    [{'Package': 'a', 'Description-en': 'x\\n more'}, {'Package': 'b'}]
    """
    fields: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, key = {}, None
        elif line[0] in " \t":
            if key is not None:
                fields[key] += "\n" + line
        else:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    if fields:
        yield fields


def clean_long(lines: Iterable[str]) -> str:
    """Debian policy 5.6.13 formatting to plain text.

    A line ``" ."`` is a paragraph break (a blank line here); lines indented by one space are
    wrapped prose, joined with spaces; lines indented by two or more are verbatim (lists,
    examples) and keep their own line, without the indentation the format added.
    """
    paragraphs: list[list[str]] = [[]]
    prose = False  # whether the last line of the paragraph is prose a wrapped line continues
    for line in lines:
        body = line[1:] if line.startswith(" ") else line
        if body.strip() == ".":
            if paragraphs[-1]:
                paragraphs.append([])
            prose = False
        elif body.startswith((" ", "\t")):
            paragraphs[-1].append(body.rstrip().removeprefix(" "))
            prose = False
        elif body.strip():
            if prose:
                paragraphs[-1][-1] += " " + body.strip()
            else:
                paragraphs[-1].append(body.strip())
            prose = True
    return "\n\n".join("\n".join(p) for p in paragraphs if p)


def parse_descriptions(text: str, lang: str) -> Iterator[Description]:
    """The ``Description-<lang>`` of each stanza of one Translation list."""
    field = f"Description-{lang}"
    for fields in stanzas(text):
        if field not in fields or "Package" not in fields:
            continue
        synopsis, *rest = fields[field].split("\n")
        yield Description(
            package=fields["Package"],
            md5=fields.get("Description-md5", ""),
            lang=lang,
            synopsis=synopsis.strip(),
            long=clean_long(rest),
        )


def descriptions(
    lang: str, lists_dir: str | Path = LISTS_DIR, limit: int | None = None
) -> list[Description]:
    """One description per md5 (the first by list path, then list order), in that order."""
    seen: set[str] = set()
    out: list[Description] = []
    for path in translation_lists(lang, lists_dir):
        for d in parse_descriptions(read_list(path), lang):
            key = d.md5 or f"{d.package}:{d.synopsis}"
            if key in seen:
                continue
            seen.add(key)
            out.append(d)
            if limit is not None and len(out) >= limit:
                return out
    return out


def package_sources(lists_dir: str | Path = LISTS_DIR) -> dict[str, str]:
    """Binary package -> source package, from the ``*_Packages`` lists when there are any.

    Binary packages of one source share text (``foo``, ``foo-data``, ``foo-doc``), so splits
    group by source; a package missing here is its own source.
    """
    out: dict[str, str] = {}
    lists_dir = Path(lists_dir)
    for path in sorted(lists_dir.glob("*_Packages.lz4")) + sorted(lists_dir.glob("*_Packages")):
        package = None
        for line in read_list(path).splitlines():
            if line.startswith("Package:"):
                package = line[8:].strip()
                out.setdefault(package, package)
            elif line.startswith("Source:") and package is not None:
                out[package] = line[7:].split("(")[0].strip()
    return out


def translation_pairs(
    english: Iterable[Description],
    other: Iterable[Description],
    sources: dict[str, str] | None = None,
) -> list[Pair]:
    """English -> other pairs joined by md5: the synopses, and the long descriptions when both
    have one. Identical (source, target) texts are kept once, first in ``other``'s order."""
    sources = sources or {}
    by_md5 = {d.md5: d for d in english if d.md5}
    pairs: list[Pair] = []
    seen: set[tuple[str, str]] = set()
    for d in other:
        en = by_md5.get(d.md5)
        if en is None:
            continue
        group = sources.get(en.package, en.package)
        for kind, src, tgt in (
            ("synopsis", en.synopsis, d.synopsis),
            ("description", en.long, d.long),
        ):
            if src and tgt and (src, tgt) not in seen:
                seen.add((src, tgt))
                pairs.append(Pair(group, en.package, kind, src, tgt))
    return pairs


def summary_pairs(
    english: Iterable[Description], sources: dict[str, str] | None = None
) -> list[Pair]:
    """Long description -> synopsis, for descriptions that have a long part (each text once)."""
    sources = sources or {}
    pairs: list[Pair] = []
    seen: set[str] = set()
    for d in english:
        if d.long and d.synopsis and d.long not in seen:
            seen.add(d.long)
            pairs.append(
                Pair(sources.get(d.package, d.package), d.package, "summary", d.long, d.synopsis)
            )
    return pairs
