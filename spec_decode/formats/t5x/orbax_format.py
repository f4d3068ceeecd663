"""T5X's Orbax checkpoint format (OCDBT), T5X's current default. Read without t5x or Orbax.

A step directory ``checkpoint_<step>/`` holds

    _CHECKPOINT_METADATA             Orbax's item handlers and timestamps
    state/                           T5X's train state dict, saved by PyTreeCheckpointHandler:
      _METADATA                      JSON: every leaf's key path and value type
      manifest.ocdbt, d/, ocdbt.process_*/   one OCDBT key-value store of zarr arrays,
                                             keys '<key path joined by dots>/.zarray' etc.
    dataset/                         the input pipeline's state, when a trainer wrote one

Reading opens each array straight from the OCDBT store with tensorstore, so a checkpoint saved
on any device topology reads on a CPU. Writing goes through Orbax itself, as T5X does.
"""

from __future__ import annotations

import json
import os
from typing import Any

from spec_decode.formats.t5x.tree import Path, bare_params, flatten, unflatten

STATE_DIR = "state"
METADATA_NAME = "_METADATA"
# Orbax value types that are arrays in the store (others, such as None or empty
# containers, hold no data).
_ARRAY_TYPES = ("jax.Array", "np.ndarray", "scalar")


def is_orbax_state_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, METADATA_NAME))


def target_specs(state_dir: str) -> tuple[dict[Path, Any], Any]:
    """{param path: tensorstore spec} under 'target', and the spec of 'state/step' (or None)."""
    filename = os.path.join(state_dir, METADATA_NAME)
    try:
        with open(filename) as f:
            metadata = json.load(f)
        tree = metadata["tree_metadata"]
        entries = [
            ([str(key["key"]) for key in entry["key_metadata"]], entry["value_metadata"])
            for entry in tree.values()
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(
            f"{filename} is not a readable Orbax checkpoint metadata file (corrupt or from an "
            f"unsupported Orbax version): {type(error).__name__}: {error}"
        ) from error
    base = os.path.abspath(state_dir)
    driver = "zarr3" if metadata.get("use_zarr3", False) else "zarr"
    use_ocdbt = metadata.get("use_ocdbt", True)

    def spec(keys: list[str]) -> dict:
        name = ".".join(keys)
        if use_ocdbt:
            kvstore = {"driver": "ocdbt", "base": f"file://{base}/", "path": name}
        else:
            kvstore = {"driver": "file", "path": os.path.join(base, name)}
        return {"driver": driver, "kvstore": kvstore}

    leaves, step = {}, None
    for keys, value in entries:
        if value.get("value_type") not in _ARRAY_TYPES or value.get("skip_deserialize", False):
            continue
        if keys[0] == "target" and len(keys) > 1:
            leaves[tuple(keys[1:])] = spec(keys)
        elif keys == ["state", "step"]:
            step = spec(keys)
    if not leaves:
        raise ValueError(f"{filename} lists no 'target' arrays: it is not a T5X checkpoint")
    return leaves, step


def save_t5x_checkpoint_orbax(params: Any, path: str, step: int = 0) -> str:
    """Write ``params`` as a T5X Orbax step directory ``path`` (e.g. '.../checkpoint_0').

    The ``state`` item is T5X's inference state dict {'target': params, 'state': {'step':
    step}}, saved with Orbax's PyTreeCheckpointHandler (OCDBT) under a composite checkpoint, as
    T5X's OrbaxCheckpointManagerInterface lays it out. Returns ``path``.
    """
    import jax.numpy as jnp
    import orbax.checkpoint as ocp  # optional dependency: the 't5x' extra

    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path):
        raise FileExistsError(f"path={path!r} already exists: T5X never overwrites a checkpoint")
    target = unflatten(
        {key: jnp.asarray(leaf) for key, leaf in flatten(bare_params(params)).items()}
    )
    state = {"target": target, "state": {"step": jnp.asarray(step, jnp.int32)}}
    checkpointer = ocp.Checkpointer(ocp.CompositeCheckpointHandler())
    try:
        checkpointer.save(path, args=ocp.args.Composite(**{STATE_DIR: ocp.args.PyTreeSave(state)}))
    finally:
        checkpointer.close()
    return path
