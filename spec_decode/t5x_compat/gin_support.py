"""Gin at the edges: where the shipped configs live, parsing T5X-style flags, entry points.

The shipped .gin files (``configs/`` in the repository, ``spec_decode.configs`` once installed)
include each other by paths relative to that directory (``include 't5_1_1/base.gin'``), so it is
put on gin's search path first. They use gin's dynamic registration, like T5X's, so nothing in
spec_decode is decorated: a file imports the module and binds ``t5.T5Config.emb_dim`` etc.

    gin_support.parse_gin(["runs/infer_speculative.gin", "pairs/xxl_small.gin"],
                          ["TARGET_CHECKPOINT_PATH = '/ckpt/xxl'", ...])
    summary = gin_support.configured(inference.infer)()

The device mesh is configurable too: ``parse_gin`` registers ``spec_decode.sharding.make_mesh``
and ``make_rules`` under their full names, so any file or binding can name them (also without
importing the module), e.g. ``MESH = @spec_decode.sharding.make_mesh()`` with
``spec_decode.sharding.make_mesh.model = 4``; ``runs/infer_speculative.gin`` wires ``MESH``,
``MESH_DATA`` and ``MESH_MODEL`` into ``inference.infer``.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

_PACKAGE = "spec_decode.configs"


@functools.cache
def configs_dir() -> Path:
    """The directory of the shipped gin files (installed package data or the repository's)."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    checkout = Path(__file__).resolve().parents[2] / "configs"  # a source checkout, not installed
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        f"the shipped gin configs were not found (package {_PACKAGE} or {checkout}): reinstall "
        "spec_decode"
    )


def config_files() -> list[str]:
    """Every shipped .gin file, relative to ``configs_dir()`` (e.g. 'pairs/xxl_small.gin')."""
    root = configs_dir()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.gin"))


def add_search_paths(paths: Sequence[str] = ()) -> None:
    """Put the shipped configs (then ``paths``) on gin's search path, once each."""
    import gin
    from gin import config as gin_config

    for path in (str(configs_dir()), *map(str, paths)):
        if path not in gin_config._LOCATION_PREFIXES:  # gin has no public query for this
            gin.add_config_file_search_path(path)


@functools.cache
def register_mesh_configurables() -> None:
    """Make ``spec_decode.sharding.make_mesh`` and ``make_rules`` gin configurables (once).

    Registered under the module's full name, they coexist with a file's dynamic registration
    (``from spec_decode import sharding`` then ``sharding.make_mesh``): both names reach the
    same function and the same bindings.
    """
    import gin

    from spec_decode import sharding

    for fn in (sharding.make_mesh, sharding.make_rules):
        gin.external_configurable(fn, module="spec_decode.sharding")


def rewrite_gin_args(argv: Sequence[str]) -> list[str]:
    """T5X's shorthand: ``--gin.NAME=value`` becomes ``--gin_bindings=NAME = value``.

    ``--gin.NAME value`` (two arguments) works too. Values are gin expressions: a string needs
    its quotes, e.g. ``--gin.INPUT_FILE="'inputs.jsonl'"``.
    """
    out, args = [], list(argv)
    while args:
        arg = args.pop(0)
        if not arg.startswith("--gin."):
            out.append(arg)
            continue
        name, has_value, value = arg[len("--gin.") :].partition("=")
        if not has_value:
            if not args:
                raise ValueError(f"{arg} is not allowed without a value: use {arg}=VALUE")
            value = args.pop(0)
        if not name:
            raise ValueError(f"{arg!r} is not allowed: it must read --gin.NAME=VALUE")
        out.append(f"--gin_bindings={name} = {value}")
    return out


def parse_gin(
    gin_files: Sequence[str],
    gin_bindings: Sequence[str] = (),
    search_paths: Sequence[str] = (),
    finalize: bool = True,
) -> None:
    """Parse gin files (absolute, relative to the working directory or to ``configs_dir()``)
    and then the bindings, which override them; files are read in order, later wins."""
    import gin

    add_search_paths(search_paths)
    register_mesh_configurables()
    for name in gin_files:
        if not _findable(name, search_paths):
            raise FileNotFoundError(
                f"gin_file={name!r} does not exist here, in {configs_dir()} or in the search "
                f"paths {list(search_paths)}; shipped configs: {config_files()}"
            )
    # gin probes every search path and, for each miss, logs an error from its package-resource
    # reader; the misses are expected (a file lives in one of the paths), so they are dropped.
    quiet = _DropMessages("Path not found")
    logging.getLogger().addFilter(quiet)
    try:
        gin.parse_config_files_and_bindings(
            list(gin_files), list(gin_bindings), finalize_config=finalize
        )
    finally:
        logging.getLogger().removeFilter(quiet)


class _DropMessages(logging.Filter):
    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def _findable(name: str, search_paths: Sequence[str]) -> bool:
    if os.path.isabs(name):
        return os.path.isfile(name)
    return any(
        os.path.isfile(os.path.join(prefix, name))
        for prefix in ("", str(configs_dir()), *search_paths)
    )


def configured(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with its gin bindings applied (a dynamically registered function)."""
    import gin

    return gin.get_configurable(fn)
