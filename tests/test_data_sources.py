"""spec_decode.data: Debian lists, gettext catalogs, docstrings, splits and the cached corpus.

Everything runs on small files the tests write (lz4 Translation lists, a hand-made .mo file,
a Python source tree), except one test over the system's real lists that skips without them.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

lz4_frame = pytest.importorskip("lz4.frame")

from spec_decode.data import corpus, debian, docstrings, gettext_pairs, splits  # noqa: E402

EN = """\
Package: hello
Description-md5: 11111111111111111111111111111111
Description-en: example package
 Hello prints a greeting. It is
 wrapped over two lines.
 .
 A second paragraph:
  * a verbatim item
  * another item

Package: hello-doc
Description-md5: 22222222222222222222222222222222
Description-en: documentation for hello
 This package contains the manual.

Package: lonely
Description-md5: 33333333333333333333333333333333
Description-en: only in English
 Nobody translated this one.
"""

DE = """\
Package: hello-doc
Description-md5: 22222222222222222222222222222222
Description-de: Dokumentation für hello
 Dieses Paket enthält das Handbuch.

Package: hello
Description-md5: 11111111111111111111111111111111
Description-de: Beispielpaket
 Hello gibt einen Gruß aus.
 .
 Ein zweiter Absatz.

Package: stale
Description-md5: 99999999999999999999999999999999
Description-de: veraltet
 Die englische Beschreibung hat sich geändert.
"""

PACKAGES = "Package: hello\nVersion: 1\n\nPackage: hello-doc\nSource: hello (1)\n\n"


def write_lists(d: Path, langs=("en", "de", "fr")) -> Path:
    texts = {"en": EN, "de": DE, "fr": DE.replace("Description-de", "Description-fr")}
    for lang in langs:
        name = f"deb.example_dists_x_main_i18n_Translation-{lang}.lz4"
        (d / name).write_bytes(lz4_frame.compress(texts[lang].encode()))
    (d / "deb.example_dists_x_main_binary-amd64_Packages.lz4").write_bytes(
        lz4_frame.compress(PACKAGES.encode())
    )
    return d


def write_mo(path: Path, messages: dict) -> None:
    """A GNU .mo file (little endian, revision 0): header, two offset tables, then strings.

    Keys and values are bytes; a plural key is b"one\\x00many" with values joined by NUL.
    """
    keys = sorted(messages)
    ids = b"".join(k + b"\x00" for k in keys)
    strs = b"".join(messages[k] + b"\x00" for k in keys)
    n = len(keys)
    start = 28 + 16 * n
    id_table, str_table, offset = [], [], start
    for k in keys:
        id_table += [len(k), offset]
        offset += len(k) + 1
    for k in keys:
        str_table += [len(messages[k]), offset]
        offset += len(messages[k]) + 1
    header = struct.pack("<7I", 0x950412DE, 0, n, 28, 28 + 8 * n, 0, 0)
    table = struct.pack(f"<{4 * n}I", *id_table, *str_table)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + table + ids + strs)


def write_catalogs(d: Path) -> Path:
    header = (
        b"Content-Type: text/plain; charset=UTF-8\nPlural-Forms: nplurals=2; plural=(n != 1);\n"
    )
    write_mo(
        d / "de" / "LC_MESSAGES" / "tool.mo",
        {
            b"": header,
            b"Open file": b"Datei \xc3\xb6ffnen",
            b"%d file\x00%d files": b"%d Datei\x00%d Dateien",
            b"menu\x04Quit": b"Beenden",
            b"OK": b"OK",  # identical: dropped
            b"Cancel": b"",  # untranslated: dropped
        },
    )
    write_mo(d / "de" / "LC_MESSAGES" / "other.mo", {b"": header, b"Save": b"Speichern"})
    return d


def test_long_descriptions_keep_paragraphs_and_verbatim_lines(tmp_path):
    (hello, *_) = debian.descriptions("en", write_lists(tmp_path))
    assert hello.synopsis == "example package"
    assert hello.long == (
        "Hello prints a greeting. It is wrapped over two lines.\n\n"
        "A second paragraph:\n* a verbatim item\n* another item"
    )


def test_pairs_join_by_md5_not_by_order_or_name(tmp_path):
    lists = write_lists(tmp_path)
    en, de = debian.descriptions("en", lists), debian.descriptions("de", lists)
    pairs = debian.translation_pairs(en, de, debian.package_sources(lists))
    by_md5 = {d.md5: d for d in en}
    for pair in pairs:
        source = by_md5[next(d.md5 for d in de if pair.target in (d.synopsis, d.long))]
        assert pair.source in (source.synopsis, source.long)
    got = {(p.kind, p.source, p.target) for p in pairs}
    assert ("synopsis", "example package", "Beispielpaket") in got
    assert (
        "description",
        "This package contains the manual.",
        "Dieses Paket enthält das Handbuch.",
    ) in got  # noqa: E501
    assert not any("veraltet" in p.target or "Nobody" in p.source for p in pairs)
    assert {p.group for p in pairs} == {"hello"}  # hello-doc is built from source hello


def test_summaries_map_long_description_to_synopsis(tmp_path):
    en = debian.descriptions("en", write_lists(tmp_path))
    pairs = debian.summary_pairs(en)
    assert [(p.package, p.target) for p in pairs] == [(d.package, d.synopsis) for d in en]
    assert all(p.source == d.long for p, d in zip(pairs, en, strict=True))


def test_python_lz4_and_the_lz4_command_read_the_same(tmp_path, monkeypatch):
    path = tmp_path / "x_i18n_Translation-en.lz4"
    path.write_bytes(lz4_frame.compress(EN.encode()))
    if subprocess.run(["which", "lz4"], capture_output=True).returncode != 0:
        pytest.skip("no lz4 command to compare with")
    monkeypatch.setitem(sys.modules, "lz4.frame", None)  # the import fails: the CLI is used
    assert debian.read_list(path) == EN


def test_missing_lists_name_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"apt-get update -o Acquire::Languages=en,de,fr"):
        debian.descriptions("de", tmp_path)
    write_lists(tmp_path, langs=("en",))
    with pytest.raises(FileNotFoundError, match="Translation-de.*Acquire::Languages=en,de,fr"):
        corpus.build_corpus(tmp_path / "out", corpus.CorpusConfig(lists_dir=str(tmp_path)))


def test_gettext_pairs_drop_header_identical_and_empty_strings(tmp_path):
    pairs, found = gettext_pairs.ui_pairs("de", [write_catalogs(tmp_path)])
    assert [p.stem for p in found.paths] == ["other", "tool"]
    got = {(p.group, p.source, p.target) for p in pairs}
    assert got == {
        ("other", "Save", "Speichern"),
        ("tool", "Open file", "Datei öffnen"),
        ("tool", "%d file", "%d Datei"),  # a plural gives its singular
        ("tool", "Quit", "Beenden"),  # without the context
    }


def test_msgfmt_catalogs_read_like_hand_written_ones(tmp_path):
    po = tmp_path / "x.po"
    po.write_text('msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\n'
                  'msgid "Save"\nmsgstr "Speichern"\n', encoding="utf-8")  # fmt: skip
    mo = tmp_path / "de" / "LC_MESSAGES" / "x.mo"
    mo.parent.mkdir(parents=True)
    if subprocess.run(["msgfmt", "-o", str(mo), str(po)], capture_output=True).returncode != 0:
        pytest.skip("no msgfmt")
    assert gettext_pairs.catalog_strings(mo) == {"Save": "Speichern"}


def test_splits_are_deterministic_disjoint_by_group_and_near_their_fractions():
    groups = [f"pkg{i}" for i in range(4000)]
    records = [(g, j) for g in groups for j in range(3)]
    a = splits.split_by_group(records, lambda r: r[0], validation=0.1, test=0.2)
    b = splits.split_by_group(list(reversed(records)), lambda r: r[0], validation=0.1, test=0.2)
    assert {k: sorted(v) for k, v in a.items()} == {k: sorted(v) for k, v in b.items()}
    owners = {}
    for name, part in a.items():
        for g, _ in part:
            assert owners.setdefault(g, name) == name
    share = {name: len(part) / len(records) for name, part in a.items()}
    # 4000 groups: the binomial standard deviation of a share is below 0.007.
    assert abs(share["test"] - 0.2) < 0.035 and abs(share["validation"] - 0.1) < 0.035
    salted = splits.split_by_group(records, lambda r: r[0], validation=0.1, test=0.2, salt="x")
    assert salted["test"] != a["test"]


BAD_FRACTIONS = [
    ({"test": 1.0}, "test"),
    ({"validation": -0.1}, "validation"),
    ({"validation": 0.5, "test": 0.5}, "sum"),
]


@pytest.mark.parametrize("kwargs, name", BAD_FRACTIONS)
def test_bad_fractions_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        splits.split_of("g", **kwargs)


def test_docstrings_skip_tests_and_strip_the_docstring_from_code(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "tests").mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        'class A:\n    def f(self, x: int = 1) -> int:\n        """Add one."""\n'
        "        return x + 1\n\n"
        'if True:\n    async def g():\n        """Only a docstring."""\n\n'
        "def undocumented():\n    pass\n"
    )
    (pkg / "tests" / "helpers.py").write_text('def h():\n    """In tests."""\n')
    (tmp_path / "test_top.py").write_text('def t():\n    """A test."""\n')
    records = docstrings.collect_docstrings([tmp_path])
    assert [(r.module, r.name, r.group) for r in records] == [
        ("pkg", "A.f", "pkg"),
        ("pkg", "g", "pkg"),
    ]
    f, g = records
    assert f.signature == "def f(self, x: int=1) -> int" and f.docstring == "Add one."
    assert f.code == "def f(self, x: int = 1) -> int:\n    return x + 1"
    assert g.signature == "async def g()" and "Only a docstring" not in g.code
    compile(g.code, "g", "exec")
    assert docstrings.collect_docstrings([tmp_path]) == records


def test_corpus_is_cached_split_by_group_and_consistent(tmp_path):
    lists, locales, py = tmp_path / "lists", tmp_path / "locale", tmp_path / "py"
    for d in (lists, locales, py):
        d.mkdir()
    write_lists(lists), write_catalogs(locales)
    (py / "mod.py").write_text('def f():\n    """Doc."""\n    return 1\n')
    config = corpus.CorpusConfig(
        validation=0.3, test=0.3, lists_dir=str(lists), locale_dirs=(str(locales),),
        python_roots=(str(py),),
    )  # fmt: skip
    out = tmp_path / "out"
    logs = []
    manifest = corpus.build_corpus(out, config, progress=False, log=logs.append)
    assert manifest["inputs"]["de_pairs"] == 4 and manifest["inputs"]["gettext_pairs"] == 4
    groups: dict[str, set] = {}
    for name in manifest["files"]:
        dataset, split, kind = name.split(".")
        if kind == "jsonl":
            rows = [json.loads(line) for line in (out / name).read_text().splitlines()]
            assert len(rows) == manifest["files"][name]["examples"]
            for row in rows:
                assert groups.setdefault(row["group"], split) == split  # every dataset agrees
    text = [d for s in splits.SPLITS for d in corpus.read_text_documents(out / f"text_en.{s}.txt")]
    assert sorted(d.split("\n")[0] for d in text) == sorted(
        ["example package", "documentation for hello", "only in English"]
    )
    again = corpus.build_corpus(out, config, progress=False, log=logs.append)
    assert again == manifest and logs and logs[-1].startswith("cached")
    (out / "summarization.train.jsonl").write_text("tampered\n")
    rebuilt = corpus.build_corpus(out, config, progress=False, log=logs.append)
    assert rebuilt["content_sha256"] == manifest["content_sha256"]


def test_the_core_does_not_import_the_data_package():
    code = "import spec_decode, spec_decode.core, sys; assert 'spec_decode.data' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_real_system_lists_pair_by_md5():
    try:
        paths = debian.translation_lists("de")
    except FileNotFoundError as e:
        pytest.skip(f"no apt Translation-de list on this machine ({e})")
    en, de = debian.descriptions("en"), debian.descriptions("de")
    assert len(en) > len(de) > 1000, (len(en), len(de), paths)
    pairs = debian.translation_pairs(en, de)
    assert len(pairs) > len(de)  # synopses and most long descriptions
    md5s = {d.md5 for d in en}
    assert sum(d.md5 in md5s for d in de) > 0.99 * len(de)
