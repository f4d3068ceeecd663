"""Opening a GGUF file and reading its metadata, with errors that name the file.

Parsing the header of SmolLM2's file takes seconds (``GGUFReader`` walks its ~100k vocabulary and
merge strings), so the reader of the last files opened is kept: loading the model and then the
tokenizer from the same file parses it once.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import gguf

SUPPORTED_ARCHITECTURES = ("llama",)
_REQUIRED = object()


def open_gguf(path: str | os.PathLike) -> gguf.GGUFReader:
    """A memory-mapped reader of ``path``; ValueError if it is not a GGUF file."""
    stat = os.stat(path)
    return _open_cached(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=2)
def _open_cached(path: str, mtime_ns: int, size: int) -> gguf.GGUFReader:
    del mtime_ns, size  # cache key only: a rewritten file is parsed again
    try:
        return gguf.GGUFReader(path, "r")
    except Exception as error:  # the reader raises ValueError, struct.error, IndexError...
        raise ValueError(
            f"{path!r} is not a readable GGUF file ({type(error).__name__}: {error}). "
            f"Supported: GGUF v2/v3 files of architecture {SUPPORTED_ARCHITECTURES}."
        ) from error


def metadata(reader: gguf.GGUFReader, key: str, default: Any = _REQUIRED) -> Any:
    """The value of metadata ``key`` (str, number, bool or list); ``default`` if absent."""
    field = reader.get_field(key)
    if field is None:
        if default is _REQUIRED:
            raise ValueError(
                f"{reader.data.filename!r}: no metadata key {key!r}, which is required."
            )
        return default
    return field.contents()
