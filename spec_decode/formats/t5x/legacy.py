"""T5X's legacy checkpoint format (msgpack + tensorstore zarr), the format of the public T5X
checkpoints. Read and written without t5x.

A step directory ``checkpoint_<step>/`` holds

    checkpoint                       msgpack of {'version': 3, 'optimizer': state_dict}
    target.encoder.layers_0.attention.query.kernel/    one zarr v2 array (gzip) per parameter
    state.param_states.../           optimizer slots, when written by a trainer

where ``state_dict`` is T5X's train state as a dict ({'target': params, 'state': {'step': ...,
'param_states': ...}}) in which every array stored in tensorstore is replaced by its tensorstore
spec, with a path relative to the step directory, and small arrays are inline msgpack arrays.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Mapping
from typing import Any

import numpy as np
from flax import serialization

from spec_decode.formats.t5x.tree import Path, bare_params, flatten, path_name, unflatten

MSGPACK_NAME = "checkpoint"
VERSION = 3  # since 2021: bfloat16 stored natively rather than as uint16
# T5X keeps each tensorstore chunk under 64 MiB.
_CHUNK_BYTES = 64 * 1024 * 1024


def _is_spec(node: Any) -> bool:
    return isinstance(node, Mapping) and "driver" in node


def read_msgpack(ckpt_dir: str) -> Mapping:
    """The decoded ``checkpoint`` msgpack of a step directory (ValueError if unreadable)."""
    filename = os.path.join(ckpt_dir, MSGPACK_NAME)
    with open(filename, "rb") as f:
        data = f.read()
    try:
        contents = serialization.msgpack_restore(data)
    except Exception as error:  # msgpack raises several unrelated types on bad bytes
        raise ValueError(
            f"{filename} is not a readable T5X msgpack checkpoint (corrupt or truncated): "
            f"{type(error).__name__}: {error}"
        ) from error
    if not isinstance(contents, Mapping):
        raise ValueError(f"{filename} is not a T5X checkpoint: it holds a {type(contents)}")
    return contents


def target_specs(ckpt_dir: str) -> tuple[dict[Path, Any], Any]:
    """{param path: inline np.ndarray or absolute tensorstore spec}, and the step's value/spec."""
    contents = read_msgpack(ckpt_dir)
    filename = os.path.join(ckpt_dir, MSGPACK_NAME)
    # Version 0 files are the optimizer state dict itself; later ones wrap it.
    state = contents.get("optimizer", {}) if contents.get("version", 0) else contents
    if not isinstance(state, Mapping) or not isinstance(state.get("target"), Mapping):
        raise ValueError(
            f"{filename} is not a T5X checkpoint: it has no 'optimizer/target' parameter tree "
            f"(top-level keys: {sorted(contents)})"
        )
    leaves = {
        path: _absolute_spec(leaf, ckpt_dir) if _is_spec(leaf) else leaf
        for path, leaf in flatten(state["target"], is_leaf=_is_spec).items()
    }
    step = state.get("state", {}).get("step") if isinstance(state.get("state"), Mapping) else None
    if _is_spec(step):
        step = _absolute_spec(step, ckpt_dir)
    return leaves, step


def _absolute_spec(spec: Mapping, ckpt_dir: str) -> dict:
    """A spec readable from here: path made absolute, cloud drivers mapped to local files."""
    spec = dict(spec)
    kvstore = spec.get("kvstore")
    if isinstance(kvstore, Mapping) and "path" in kvstore:
        relative = kvstore["path"]
    elif "path" in spec:  # tensorstore < 0.1.14 kept the path at the top level
        relative = spec.pop("path")
    else:
        raise ValueError(f"tensorstore spec {spec} in {ckpt_dir} has no path")
    # T5X writes paths relative to the step directory (gcs specs name a dummy bucket), so the
    # array lives next to the msgpack file wherever the checkpoint was copied to.
    spec["kvstore"] = {"driver": "file", "path": os.path.join(ckpt_dir, relative)}
    metadata = dict(spec.get("metadata", {}))
    # Chunking and compression are read from the array's own .zarray; only the shape is checked.
    metadata.pop("chunks", None)
    metadata.pop("compressor", None)
    spec["metadata"] = metadata
    if spec.get("dtype") == "uint16" or metadata.get("dtype") == "<u2":
        raise ValueError(
            f"tensorstore spec {spec} stores bfloat16 as uint16 (T5X checkpoint version < 3), "
            "which is not supported"
        )
    return spec


def chunk_shape(shape: tuple[int, ...], itemsize: int) -> list[int]:
    """The whole array, or, above 64 MiB, the largest dimensions cut into exact divisors."""
    chunks = list(shape)
    while math.prod(chunks) * itemsize > _CHUNK_BYTES:
        axis = max(range(len(chunks)), key=lambda i: chunks[i])
        size = chunks[axis]
        chunks[axis] = next(d for d in range(size - 1, 0, -1) if shape[axis] % d == 0)
    return [max(c, 1) for c in chunks]


def save_t5x_checkpoint_legacy(params: Any, path: str, step: int = 0) -> str:
    """Write ``params`` as a T5X legacy step directory ``path`` (e.g. '.../checkpoint_0').

    Laid out as T5X's inference state: ``target.<param path>/`` zarr arrays (gzip) and a
    ``checkpoint`` msgpack of {'version': 3, 'optimizer': {'target': specs, 'state':
    {'step': step}}}. Written to a temporary directory renamed at the end, so an interrupted
    write leaves no half checkpoint. Returns ``path``.
    """
    import tensorstore as ts  # optional dependency: the 't5x' extra

    leaves = flatten(bare_params(params))
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path):
        raise FileExistsError(f"path={path!r} already exists: T5X never overwrites a checkpoint")
    tmp_dir = f"{path}.tmp-{os.getpid()}"
    os.makedirs(tmp_dir)
    try:
        specs, writes = {}, []
        for leaf_path, value in leaves.items():
            array = np.asarray(value)
            name = "target." + ".".join(leaf_path)
            spec = {
                "driver": "zarr",
                "dtype": array.dtype.name,
                "kvstore": {"driver": "file", "path": f"{name}/"},
                "metadata": {
                    "chunks": chunk_shape(array.shape, array.dtype.itemsize),
                    "compressor": {"id": "gzip", "level": 1},
                    "shape": list(array.shape),
                },
            }
            specs[leaf_path] = spec
            absolute = {**spec, "kvstore": {"driver": "file", "path": os.path.join(tmp_dir, name)}}
            store = ts.open(absolute, create=True, open=True).result()
            writes.append((leaf_path, store.write(array)))
        for leaf_path, write in writes:
            try:
                write.result()
            except Exception as error:
                raise ValueError(
                    f"writing leaf '{path_name(leaf_path)}' failed: {error}"
                ) from error
        state_dict = {"target": unflatten(specs), "state": {"step": np.asarray(step, np.int32)}}
        data = serialization.msgpack_serialize({"version": VERSION, "optimizer": state_dict})
        with open(os.path.join(tmp_dir, MSGPACK_NAME), "wb") as f:
            f.write(data)
        os.rename(tmp_dir, path)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return path
