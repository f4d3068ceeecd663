"""One cached corpus on disk from what this machine has: apt lists, gettext catalogs, Python.

``build_corpus(out)`` writes, per split (train / validation / test, by group: ``splits.py``):

    translation_en_de.<split>.jsonl  {"group","package","origin","kind","en","de"}
                                     origin "debian" (synopsis, description) or "gettext" (ui)
    translation_en_fr.<split>.jsonl  the same from the French lists (Debian only)
    summarization.<split>.jsonl      {"group","package","document","summary"}: long -> synopsis
    docstrings.<split>.jsonl         {"group","module","name","signature","docstring","code"}
    text_en.<split>.txt              English descriptions, one document per block: lines are
                                     the synopsis and paragraphs, a blank line ends a document
    manifest.json                    config, sources, input and output counts, words, hashes

A second call with the same config and unchanged inputs finds the manifest, checks the content
hash of the files it lists, and returns it without rebuilding.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from spec_decode.data import debian, docstrings, gettext_pairs
from spec_decode.data.splits import SPLITS, check_fractions, split_by_group

MANIFEST = "manifest.json"
VERSION = 1


@dataclasses.dataclass(frozen=True)
class CorpusConfig:
    """What decides the corpus' content. ``limit`` caps each output before splitting (smoke)."""

    validation: float = 0.05
    test: float = 0.05
    salt: str = "spec_decode"
    limit: int | None = None
    lists_dir: str = str(debian.LISTS_DIR)
    locale_dirs: tuple[str, ...] | None = None  # None: gettext_pairs.locale_dirs()
    python_roots: tuple[str, ...] | None = None  # None: docstrings.default_roots()

    def __post_init__(self):
        check_fractions(self.validation, self.test)
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit <= 0):
            raise ValueError(f"limit={self.limit!r} is not allowed: a positive int or None")


def _fingerprint(paths: Iterable[Path]) -> str:
    """Changes when any input file is added, removed, resized or touched."""
    h = hashlib.sha256()
    for p in sorted(set(paths)):
        st = p.stat()
        h.update(f"{p}\x00{st.st_size}\x00{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _content_hash(out: Path, names: Iterable[str]) -> str:
    h = hashlib.sha256()
    for name in sorted(names):
        h.update(name.encode() + b"\x00")
        with open(out / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _inputs(config: CorpusConfig) -> dict:
    """The input files (found, not read) and their fingerprint."""
    lists = {lang: debian.translation_lists(lang, config.lists_dir) for lang in ("en", "de", "fr")}
    packages = sorted(Path(config.lists_dir).glob("*_Packages*"))
    catalogs = gettext_pairs.find_catalogs("de", config.locale_dirs)
    roots = config.python_roots or tuple(str(r) for r in docstrings.default_roots())
    sources = [f for _, f in docstrings.source_files(roots)]
    paths = [p for ps in lists.values() for p in ps] + packages + catalogs + sources
    return {
        "debian_lists": {lang: [str(p) for p in ps] for lang, ps in lists.items()},
        "debian_packages_lists": [str(p) for p in packages],
        "gettext_catalogs": len(catalogs),
        "gettext_dirs": sorted({str(p.parents[2]) for p in catalogs}),
        "python_roots": list(roots),
        "python_files": len(sources),
        "fingerprint": _fingerprint(paths),
    }


def cached_manifest(out: str | Path, config: CorpusConfig, inputs: dict) -> dict | None:
    """The manifest in ``out`` if it matches this config, these inputs and the files' hash."""
    path = Path(out) / MANIFEST
    if not path.exists():
        return None
    manifest = json.loads(path.read_text())
    same = (
        manifest.get("version") == VERSION
        and manifest.get("config") == json.loads(json.dumps(dataclasses.asdict(config)))
        and manifest.get("sources", {}).get("fingerprint") == inputs["fingerprint"]
    )
    names = list(manifest.get("files", {}))
    if not same or not all((Path(out) / n).exists() for n in names):
        return None
    return manifest if _content_hash(Path(out), names) == manifest["content_sha256"] else None


def _write_jsonl(path: Path, rows: Iterable[dict]) -> tuple[int, int]:
    n = words = 0
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
            n += 1
            words += sum(
                len(str(v).split()) for k, v in row.items() if k not in ("group", "package")
            )
    return n, words


def _write_text(path: Path, documents: Iterable[str]) -> tuple[int, int]:
    n = words = 0
    with open(path, "w", encoding="utf-8") as f:
        for doc in documents:
            f.write(doc + "\n\n")
            n += 1
            words += len(doc.split())
    return n, words


def read_text_documents(path: str | Path) -> list[str]:
    """The documents of a ``text_en.*.txt`` file (blank-line separated), without the breaks."""
    return [d for d in Path(path).read_text(encoding="utf-8").split("\n\n") if d.strip()]


def _pair_rows(pairs: list[debian.Pair], lang: str, origin: str) -> list[dict]:
    return [
        {"group": p.group, "package": p.package, "origin": origin, "kind": p.kind,
         "en": p.source, lang: p.target}
        for p in pairs
    ]  # fmt: skip


def _summary_rows(pairs: list[debian.Pair]) -> list[dict]:
    return [
        {"group": p.group, "package": p.package, "document": p.source, "summary": p.target}
        for p in pairs
    ]


def _text_rows(descs: list[debian.Description], sources: dict[str, str]) -> list[dict]:
    """One document per description: the synopsis, then each paragraph or verbatim line."""
    return [
        {"group": sources.get(d.package, d.package),
         "text": "\n".join([d.synopsis] + [p for p in d.long.split("\n") if p.strip()])}
        for d in descs
    ]  # fmt: skip


def build_corpus(
    out: str | Path,
    config: CorpusConfig = CorpusConfig(),
    force: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """Build (or find cached) the corpus in ``out``; returns the manifest."""
    out = Path(out)
    inputs = _inputs(config)
    if not force and (manifest := cached_manifest(out, config, inputs)) is not None:
        log(f"cached: {out / MANIFEST} matches the config and inputs")
        return manifest
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)  # a half-written corpus is never taken as cached
    seconds: dict[str, float] = {}
    counts: dict[str, int] = {}

    def stage(name: str, fn):
        t = time.perf_counter()
        result = fn()
        seconds[name] = round(seconds.get(name, 0.0) + time.perf_counter() - t, 2)
        return result

    descs = stage("debian", lambda: {
        lang: debian.descriptions(lang, config.lists_dir) for lang in ("en", "de", "fr")
    })  # fmt: skip
    sources = stage("debian", lambda: debian.package_sources(config.lists_dir))
    ui, catalogs = stage(
        "gettext", lambda: gettext_pairs.ui_pairs("de", config.locale_dirs, config.limit)
    )
    docs = stage(
        "docstrings",
        lambda: docstrings.collect_docstrings(config.python_roots, config.limit, progress),
    )
    counts.update({f"{lang}_descriptions": len(v) for lang, v in descs.items()})
    counts["gettext_pairs"] = len(ui)
    counts["docstrings"] = len(docs)

    cap = (lambda xs: xs[: config.limit]) if config.limit else (lambda xs: xs)
    de = debian.translation_pairs(descs["en"], descs["de"], sources)
    fr = debian.translation_pairs(descs["en"], descs["fr"], sources)
    counts["de_pairs"], counts["fr_pairs"] = len(de), len(fr)

    ui_rows = _pair_rows(ui, "de", "gettext")
    datasets = {
        "translation_en_de": (cap(_pair_rows(de, "de", "debian")) + cap(ui_rows), "jsonl"),
        "translation_en_fr": (cap(_pair_rows(fr, "fr", "debian")), "jsonl"),
        "summarization": (_summary_rows(cap(debian.summary_pairs(descs["en"], sources))), "jsonl"),
        "docstrings": ([dict(group=d.group, **dataclasses.asdict(d)) for d in docs], "jsonl"),
        "text_en": (_text_rows(cap(descs["en"]), sources), "txt"),
    }
    files: dict[str, dict] = {}
    t = time.perf_counter()
    bar = _bar(len(datasets) * len(SPLITS), progress)
    for name, (rows, kind) in datasets.items():
        parts = split_by_group(
            rows, lambda r: r["group"], config.validation, config.test, config.salt
        )
        for split in SPLITS:
            fname = f"{name}.{split}.{kind}"
            if kind == "txt":
                n, words = _write_text(out / fname, (r["text"] for r in parts[split]))
            else:
                n, words = _write_jsonl(out / fname, parts[split])
            files[fname] = {"examples": n, "words": words, "bytes": (out / fname).stat().st_size}
            bar.update(1)
    bar.close()
    seconds["write"] = round(time.perf_counter() - t, 2)
    manifest = {
        "version": VERSION,
        "config": dataclasses.asdict(config),
        "sources": {**inputs, "gettext_skipped": [[str(p), why] for p, why in catalogs.skipped]},
        "inputs": counts,
        "files": files,
        "words": sum(f["words"] for f in files.values()),
        "seconds": seconds,
        "content_sha256": _content_hash(out, files),
    }
    text = json.dumps(manifest, indent=1, ensure_ascii=False)
    (out / MANIFEST).write_text(text + "\n")
    return json.loads(text)  # the same value a cached call returns (tuples become lists)


def _bar(total: int, progress: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="writing", unit="file", disable=not progress)


def split_table(manifest: dict) -> str:
    """Examples and words per dataset and split, as aligned text lines."""
    lines = [f"{'dataset':<20}" + "".join(f"{s:>20}" for s in SPLITS)]
    names = sorted({name.split(".")[0] for name in manifest["files"]})
    for name in names:
        cells = []
        for split in SPLITS:
            f = next(v for k, v in manifest["files"].items() if k.startswith(f"{name}.{split}."))
            cells.append(f"{f['examples']:>9} ({f['words']:>8}w)")
        lines.append(f"{name:<20}" + "".join(f"{c:>20}" for c in cells))
    return "\n".join(lines)
