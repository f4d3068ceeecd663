"""Old import paths kept working after a package moved: the old name *is* the new package.

A package alias must also register each submodule: otherwise ``import old.sub`` would find the
file through the new package's ``__path__`` and load it a second time, as a separate module with
its own classes (and ``isinstance`` across the two copies would fail).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence


def alias_package(old_name: str, new_name: str, submodules: Sequence[str]) -> None:
    """Make ``old_name`` and ``old_name.<sub>`` (for each of ``submodules``) the new modules."""
    for sub in submodules:
        sys.modules[f"{old_name}.{sub}"] = importlib.import_module(f"{new_name}.{sub}")
    sys.modules[old_name] = importlib.import_module(new_name)
