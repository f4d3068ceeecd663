"""The real text the request sources word: read once from what this machine has.

    apt Translation lists     English, German, French package descriptions (``data.debian``)
    apt Packages lists        binary -> source package (the group a package's requests share)
    gettext catalogs          English -> German and -> French UI strings (``data.gettext_pairs``)
    Python sources            documented functions (``data.docstrings``)
    tzdata                    city and country names (``zone1970.tab``, ``iso3166.tab``)

Nothing is downloaded. A missing apt list is a ValueError naming the command that fetches it.
"""

from __future__ import annotations

import dataclasses
import zoneinfo
from pathlib import Path

from spec_decode.data import debian, docstrings, gettext_pairs

LANGUAGES = ("en", "de", "fr")


@dataclasses.dataclass(frozen=True)
class InputConfig:
    """Where the inputs are; None: the system's default places."""

    lists_dir: str = str(debian.LISTS_DIR)
    locale_dirs: tuple[str, ...] | None = None
    python_roots: tuple[str, ...] | None = None  # None: stdlib and site-packages
    tz_dirs: tuple[str, ...] | None = None  # None: zoneinfo.TZPATH
    limit: int | None = None  # at most this many descriptions, UI strings, functions each

    def __post_init__(self):
        limit = self.limit
        if limit is not None and (not isinstance(limit, int) or limit <= 0):
            raise ValueError(f"limit={limit!r} is not allowed: a positive int or None")


@dataclasses.dataclass(frozen=True)
class Inputs:
    descriptions: dict[str, list[debian.Description]]  # language -> descriptions
    sources: dict[str, str]  # binary package -> source package
    ui: dict[str, list[debian.Pair]]  # "de" / "fr" -> English -> that language, by domain
    functions: list[docstrings.Docstring]
    cities: list[str]
    countries: list[str]

    def counts(self) -> dict[str, int]:
        out = {f"{lang}_descriptions": len(d) for lang, d in self.descriptions.items()}
        out.update({f"ui_{lang}": len(p) for lang, p in self.ui.items()})
        out.update(functions=len(self.functions), cities=len(self.cities))
        out["countries"] = len(self.countries)
        return out


def load_inputs(config: InputConfig = InputConfig(), progress: bool = False) -> Inputs:
    """Read every input once (about 10 s on two cores, plus the docstrings' parse)."""
    descriptions = {}
    for lang in LANGUAGES:
        try:
            descriptions[lang] = debian.descriptions(lang, config.lists_dir, config.limit)
        except FileNotFoundError as error:
            raise ValueError(
                f"lists_dir={config.lists_dir!r} has no apt Translation-{lang} list: run "
                f"`{debian.UPDATE_COMMAND}` (as root) to fetch the English, German and French "
                f"package descriptions ({error})"
            ) from None
    ui = {
        lang: gettext_pairs.ui_pairs(lang, config.locale_dirs, config.limit)[0]
        for lang in ("de", "fr")
    }
    functions = docstrings.collect_docstrings(config.python_roots, config.limit, progress)
    cities, countries = places(config.tz_dirs)
    return Inputs(
        descriptions, debian.package_sources(config.lists_dir), ui, functions, cities, countries
    )


def places(tz_dirs: tuple[str, ...] | None = None) -> tuple[list[str], list[str]]:
    """City names (the last part of tzdata's zone names) and country names, sorted; empty
    when tzdata is absent (the everyday sources then word fewer requests)."""
    dirs = [Path(d) for d in (zoneinfo.TZPATH if tz_dirs is None else tz_dirs)]
    cities: set[str] = set()
    countries: set[str] = set()
    for d in dirs:
        for line in _table(d / "zone1970.tab"):
            if len(line) >= 3 and "/" in line[2]:
                cities.add(line[2].rsplit("/", 1)[1].replace("_", " "))
        for line in _table(d / "iso3166.tab"):
            if len(line) >= 2:
                countries.add(line[1].split(" (")[0])  # "Korea (South)"
    return sorted(cities), sorted(countries)


def _table(path: Path) -> list[list[str]]:
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.split("\t") for line in lines if line and not line.startswith("#")]
