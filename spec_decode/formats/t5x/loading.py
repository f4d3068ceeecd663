"""``load_t5x_checkpoint``: T5X parameters from either T5X format, without t5x.

The format is detected from the directory: a ``checkpoint`` msgpack file means the legacy
format, a ``state/_METADATA`` file the Orbax (OCDBT) one. Every array is opened first (cheap:
metadata only), checked against the model's expected tree when one is given, and only then read,
so a wrong model size fails in seconds even for an 11B checkpoint.
"""

from __future__ import annotations

import os
import re
from typing import Any

import jax.numpy as jnp
import numpy as np

from spec_decode.formats.t5x import legacy, orbax_format
from spec_decode.formats.t5x.tree import Path, check_params_match, path_name, unflatten

_STEP_DIR = re.compile(r"^checkpoint_(\d+)$")


def find_t5x_checkpoint(path: str, step: int | None = None) -> tuple[str, str]:
    """(format, directory): ('legacy', step dir with the msgpack) or ('orbax', its state dir).

    ``path`` may be a step directory, its ``checkpoint`` file or ``state`` directory, or a model
    directory of ``checkpoint_<step>`` directories (the latest, or ``step``, is used).
    """
    path = os.path.abspath(os.fspath(path))
    if not os.path.exists(path):
        raise FileNotFoundError(f"T5X checkpoint path={path!r} does not exist")
    if os.path.isfile(path):
        if os.path.basename(path) == legacy.MSGPACK_NAME:
            return "legacy", os.path.dirname(path)
        if os.path.basename(path) == orbax_format.METADATA_NAME:
            return "orbax", os.path.dirname(path)
        raise ValueError(
            f"path={path!r} is not a T5X checkpoint: a file must be a legacy 'checkpoint' msgpack"
        )
    state_dir = os.path.join(path, orbax_format.STATE_DIR)
    if os.path.isfile(os.path.join(path, legacy.MSGPACK_NAME)):
        return "legacy", path
    if orbax_format.is_orbax_state_dir(state_dir):
        return "orbax", state_dir
    if orbax_format.is_orbax_state_dir(path):
        return "orbax", path
    steps = {
        int(match.group(1)): os.path.join(path, name)
        for name in os.listdir(path)
        if (match := _STEP_DIR.match(name)) and os.path.isdir(os.path.join(path, name))
    }
    if steps:
        if step is None:
            step = max(steps)
        if step not in steps:
            raise ValueError(f"step={step!r} is not allowed: {path} holds steps {sorted(steps)}")
        return find_t5x_checkpoint(steps[step])
    raise ValueError(
        f"path={path!r} is not a T5X checkpoint: expected a 'checkpoint' msgpack file (legacy "
        "format), a 'state/_METADATA' file (Orbax format) or checkpoint_<step> directories"
    )


def load_t5x_checkpoint(
    path: str,
    restore_dtype: Any = None,
    *,
    expected: Any = None,
    step: int | None = None,
) -> dict:
    """Read a T5X checkpoint's parameters: {'target': params, 'step': int or None}.

    Args:
      path: see ``find_t5x_checkpoint``; both T5X formats are detected.
      restore_dtype: cast floating parameters to this dtype (e.g. 'bfloat16'); None keeps the
        stored dtype.
      expected: optional parameter tree of the model (arrays or ``jax.ShapeDtypeStruct``s, e.g.
        ``jax.eval_shape(model.init, key)``); a missing, unexpected or mis-shaped leaf raises a
        ValueError naming it and both shapes, before any array data is read.
      step: which step of a model directory to read (default: the latest).

    Returns:
      {'target': nested dict of np.ndarray with T5X's parameter names, 'step': the training step}.
    """
    import tensorstore as ts  # optional dependency: the 't5x' extra

    cast_to = _restore_dtype(restore_dtype)
    fmt, directory = find_t5x_checkpoint(path, step)
    reader = legacy if fmt == "legacy" else orbax_format
    specs, step_spec = reader.target_specs(directory)
    where = f"the {fmt} T5X checkpoint at {directory}"

    opening = {key: ts.open(spec) for key, spec in specs.items() if isinstance(spec, dict)}
    stores = {key: _result(opening[key], key, where, "opened") for key in opening}
    inline = {key: np.asarray(leaf) for key, leaf in specs.items() if key not in opening}
    if expected is not None:
        check_params_match(expected, unflatten({**stores, **inline}), source=where)

    if cast_to is not None:
        # Cast while reading, so an 11B float32 checkpoint never sits in memory twice.
        stores = {
            key: ts.cast(store, cast_to) if _is_floating(store.dtype.numpy_dtype) else store
            for key, store in stores.items()
        }
        inline = {
            key: leaf.astype(cast_to) if _is_floating(leaf.dtype) else leaf
            for key, leaf in inline.items()
        }
    reading = {key: store.read() for key, store in stores.items()}
    arrays = {
        key: _result(reading[key], key, where, "read") if key in reading else inline[key]
        for key in specs
    }
    return {"target": unflatten(arrays), "step": _read_step(step_spec, where)}


def _result(future: Any, key: Path, where: str, action: str) -> Any:
    try:
        return future.result()
    except Exception as error:  # tensorstore reports missing or corrupt data as ValueError etc.
        detail = str(error).split(" [tensorstore_spec=")[0]  # drop tensorstore's spec dump
        raise ValueError(
            f"leaf '{path_name(key)}' of {where} could not be {action}: {detail}"
        ) from error


def _read_step(step_spec: Any, where: str) -> int | None:
    if step_spec is None:
        return None
    if isinstance(step_spec, dict):
        import tensorstore as ts

        store = _result(ts.open(step_spec), ("state", "step"), where, "opened")
        step_spec = _result(store.read(), ("state", "step"), where, "read")
    return int(np.asarray(step_spec))


def _is_floating(dtype: np.dtype) -> bool:
    return jnp.issubdtype(dtype, jnp.floating)  # unlike NumPy's, counts bfloat16 as floating


def _restore_dtype(restore_dtype: Any) -> np.dtype | None:
    if restore_dtype is None:
        return None
    try:
        dtype = jnp.dtype(restore_dtype)
    except TypeError:
        dtype = None
    if dtype is None or not _is_floating(dtype):
        raise ValueError(
            f"restore_dtype={restore_dtype!r} is not allowed: it must be None or a floating "
            "dtype such as 'float32' or 'bfloat16'"
        )
    return dtype
