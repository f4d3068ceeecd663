"""(name, signature, docstring, code) of documented Python functions under some source roots.

The default roots are the running interpreter's standard library and site-packages, so the
corpus is whatever this machine has installed. Files are read in sorted order and parsed with
``ast`` (nothing is imported or run); tests, huge (usually generated) files and files that do
not parse are skipped.
"""

from __future__ import annotations

import ast
import dataclasses
import sysconfig
import textwrap
from collections.abc import Iterable, Iterator
from pathlib import Path

MAX_FILE_BYTES = 1_000_000
SKIP_DIRS = frozenset(
    {"test", "tests", "testing", "__pycache__", "site-packages", "dist-packages", "idlelib"}
)


@dataclasses.dataclass(frozen=True)
class Docstring:
    """One documented function: ``code`` is its source with the docstring taken out."""

    module: str  # dotted, relative to its root: "json.decoder"
    name: str  # qualified within the module: "JSONDecoder.decode"
    signature: str  # "def decode(self, s, _w=WHITESPACE.match)"
    docstring: str  # cleaned by inspect's rules (ast.get_docstring)
    code: str

    @property
    def group(self) -> str:
        """The top-level package: submodules of one package stay in one split."""
        return self.module.split(".")[0]


def default_roots() -> list[Path]:
    """The standard library, then site-packages (purelib and platlib), each once."""
    paths = sysconfig.get_paths()
    out: list[Path] = []
    for key in ("stdlib", "purelib", "platlib"):
        p = Path(paths[key])
        if p.is_dir() and p.resolve() not in {q.resolve() for q in out}:
            out.append(p)
    return out


def is_test_file(path: Path) -> bool:
    name = path.name
    return name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"


def source_files(
    roots: Iterable[str | Path], max_bytes: int = MAX_FILE_BYTES
) -> list[tuple[Path, Path]]:
    """(root, file) for every ``.py`` under the roots, sorted, without tests or huge files.

    Under a root the folders of ``SKIP_DIRS`` are not entered (a stdlib root would otherwise
    walk into site-packages, which is a root of its own).
    """
    if max_bytes <= 0:
        raise ValueError(f"max_bytes={max_bytes} is not allowed: a positive number of bytes")
    out: list[tuple[Path, Path]] = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"roots: {root} is not a directory")
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(root).parts
            if any(p in SKIP_DIRS or p.startswith(".") for p in parts[:-1]) or is_test_file(path):
                continue
            if "-" in "".join(parts[:-1]):  # not importable (e.g. foo-1.0.dist-info, lib-dynload)
                continue
            try:
                if path.stat().st_size > max_bytes:
                    continue
            except OSError:
                continue
            out.append((root, path))
    return out


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts) or path.stem


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    returns = f" -> {ast.unparse(node.returns)}" if node.returns is not None else ""
    return f"{prefix} {node.name}({ast.unparse(node.args)}){returns}"


def _code_without_docstring(lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    doc = node.body[0]
    body = lines[node.lineno - 1 : doc.lineno - 1] + lines[doc.end_lineno : node.end_lineno]
    if len(node.body) == 1:  # only a docstring: the function needs a body to stay valid Python
        indent = len(lines[doc.lineno - 1]) - len(lines[doc.lineno - 1].lstrip())
        body.append(" " * indent + "...")
    return textwrap.dedent("\n".join(body))


def file_docstrings(source: str, module: str) -> Iterator[Docstring]:
    """Documented functions and methods of one module's source, in source order."""
    tree = ast.parse(source)
    lines = source.splitlines()

    def visit(node: ast.AST, prefix: str) -> Iterator[Docstring]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                yield from visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(child)
                if doc and doc.strip():
                    yield Docstring(
                        module=module,
                        name=prefix + child.name,
                        signature=_signature(child),
                        docstring=doc,
                        code=_code_without_docstring(lines, child),
                    )
                yield from visit(child, f"{prefix}{child.name}.<locals>.")
            elif isinstance(child, ast.stmt):  # functions under if/try/with blocks
                yield from visit(child, prefix)

    yield from visit(tree, "")


def collect_docstrings(
    roots: Iterable[str | Path] | None = None,
    limit: int | None = None,
    progress: bool = False,
) -> list[Docstring]:
    """Documented functions under ``roots`` (default: ``default_roots()``), each (docstring,
    code) once, in sorted file order then source order."""
    files = source_files(default_roots() if roots is None else roots)
    if progress:
        from tqdm import tqdm

        files = tqdm(files, desc="python sources", unit="file")
    out: list[Docstring] = []
    seen: set[tuple[str, str]] = set()
    for root, path in files:
        try:
            source = path.read_text(encoding="utf-8")
            found = list(file_docstrings(source, module_name(root, path)))
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError, RecursionError):
            continue
        for record in found:
            if (record.docstring, record.code) not in seen:
                seen.add((record.docstring, record.code))
                out.append(record)
                if limit is not None and len(out) >= limit:
                    return out
    return out
