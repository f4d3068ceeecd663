"""Import paths from before the folders were reorganised, kept working without files of their own.

``import spec_decode.decode`` (or ``spec_decode.t5.cache``, ...) gives the very module that now
lives at the new path: one object under two names, never a second copy of its classes. A finder
on ``sys.meta_path`` maps an old name, or any name below an old package, by prefix; nothing is
imported until somebody asks for an old name.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys

# old module or package -> new one (a package's submodules follow by prefix)
MOVED = {
    "spec_decode.contract": "spec_decode.core.contract",
    "spec_decode.decode": "spec_decode.core.functional",
    "spec_decode.keys": "spec_decode.core.keys",
    "spec_decode.reference": "spec_decode.core.reference",
    "spec_decode.rejection": "spec_decode.core.rejection",
    "spec_decode.sampling": "spec_decode.core.sampling",
    "spec_decode.state": "spec_decode.core.state",
    "spec_decode.steps": "spec_decode.core.steps",
    "spec_decode.theory": "spec_decode.core.theory",
    "spec_decode.validation": "spec_decode.core.validation",
    "spec_decode.t5": "spec_decode.models.t5",
    "spec_decode.checkpoints": "spec_decode.formats.t5x",
    "spec_decode.models.layers": "spec_decode.models.llama.layers",
    "spec_decode.models.hf_export": "spec_decode.formats.hf_llama",
    "spec_decode.smollm2.gguf_file": "spec_decode.formats.gguf.reader",
    "spec_decode.distill.draft": "spec_decode.drafts.neural",
    "spec_decode.gin_support": "spec_decode.t5x_compat.gin_support",
    "spec_decode.seqio_tasks": "spec_decode.t5x_compat.seqio_tasks",
}


def new_name(name: str) -> str | None:
    """The current name of a module imported by an old name (None if the name is current)."""
    for old, new in MOVED.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old) :]
    return None


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str):
        self._target = target

    def create_module(self, spec):
        return importlib.import_module(self._target)

    def exec_module(self, module):
        pass  # already executed under its new name


class LegacyPathFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        target_name = new_name(fullname)
        if target_name is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(target_name))


def install() -> None:
    if not any(isinstance(finder, LegacyPathFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, LegacyPathFinder())
