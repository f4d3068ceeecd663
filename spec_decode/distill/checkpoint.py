"""The shipped SmolLM2 draft: own weights (float16 npz) + config.json under package assets."""

from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from spec_decode.drafts.neural import SharedEmbeddingDraft, own_weights, with_head_rows
from spec_decode.models import LlamaConfig

ASSET_DIR = pathlib.Path(__file__).resolve().parents[1] / "assets" / "smollm2_draft"
MAX_BYTES = 16 * 2**20


def save_draft(draft: SharedEmbeddingDraft, params: dict, directory, metadata: dict) -> int:
    """Write weights.npz (float16 own weights + the subset ids) and config.json; return bytes."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    flat = traverse_util.flatten_dict(jax.device_get(own_weights(params)), sep="/")
    arrays = {k: np.asarray(v, np.float16) for k, v in flat.items()}
    for name, array in arrays.items():
        if not np.isfinite(array).all():
            raise ValueError(f"draft weight {name!r} is not finite in float16: not saved")
    arrays["subset"] = np.asarray(params["subset"], np.int32)
    np.savez_compressed(directory / "weights.npz", **arrays)
    size = (directory / "weights.npz").stat().st_size
    if size > MAX_BYTES:
        raise ValueError(f"draft weights are {size} bytes: more than the {MAX_BYTES} allowed")
    config = {"body": {k: getattr(draft.body, k) for k in draft.body.__dataclass_fields__}}
    (directory / "config.json").write_text(json.dumps(dict(config, **metadata), indent=1))
    return size


def load_draft(target_params: dict, directory=None, dtype=None):
    """(SharedEmbeddingDraft, params) from a saved directory (default: the shipped asset)."""
    directory = pathlib.Path(directory or ASSET_DIR)
    if not (directory / "weights.npz").exists():
        raise FileNotFoundError(
            f"no draft weights at {directory}/weights.npz: train one with scripts/distill_draft.py"
        )
    config = json.loads((directory / "config.json").read_text())
    body = dict(config["body"])
    if dtype is not None:
        body["dtype"] = jnp.dtype(dtype).name
    draft = SharedEmbeddingDraft(LlamaConfig(**body))
    with np.load(directory / "weights.npz") as data:
        subset = jnp.asarray(data["subset"])
        flat = {k: jnp.asarray(data[k], jnp.float32) for k in data.files if k != "subset"}
    own = traverse_util.unflatten_dict(flat, sep="/")
    embedding = target_params["embed"]["embedding"]
    params = {"body": dict(own, embed={"embedding": embedding}), "subset": subset}
    return draft, with_head_rows(params, draft.body.dtype)
