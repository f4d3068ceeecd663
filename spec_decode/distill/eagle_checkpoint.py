"""An EAGLE draft on disk: its own weights in bfloat16 + config.json; the target's tables are not
saved (they are the target's, read back from it at load).

    DIR/weights.npz     fc/kernel [2D, D], layers/... [Lyr, ...], final_norm/scale [D], each
                        bfloat16 stored as its uint16 bit pattern (npz has no bfloat16); the
                        canonical layout (separate query, key, value, gate, up) even when the
                        target it was trained beside was fused
    DIR/config.json     {"num_layers", "emb_dim", "vocab_size", "tie_embeddings", ...metadata}

``load_eagle`` rebuilds the draft from the target it is loaded for (widths, dtype, fused
layout, attention path all follow the target), so one file serves a CPU float32 target and a
GPU bfloat16 fused one; a target of other widths is an error.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
from flax import traverse_util

from spec_decode.drafts.eagle import EagleDraft, eagle_config
from spec_decode.models.llama import LlamaLM

ASSET_DIR = pathlib.Path(__file__).resolve().parents[1] / "assets" / "smollm2_eagle"
MAX_BYTES = 16 * 2**20
BUILD_COMMAND = "python scripts/train_eagle.py --shards DATA --out DIR"
CHECKED = ("emb_dim", "vocab_size", "num_heads", "num_kv_heads", "head_dim", "tie_embeddings")


def save_eagle(draft: EagleDraft, params: dict, directory, metadata: dict) -> int:
    """Write weights.npz and config.json; return the weights' bytes (at most 16 MiB)."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    own = jax.device_get(EagleDraft.own(params))
    if draft.config.fused_projections:
        own = LlamaLM(draft.config).unfuse_params(own)
    flat = traverse_util.flatten_dict(own, sep="/")
    arrays = {}
    for name, value in flat.items():
        array = np.asarray(value, np.float32).astype(ml_dtypes.bfloat16)
        if not np.isfinite(array.astype(np.float32)).all():
            raise ValueError(f"draft weight {name!r} is not finite in bfloat16: not saved")
        arrays[name] = array.view(np.uint16)
    np.savez(directory / "weights.npz", **arrays)
    size = (directory / "weights.npz").stat().st_size
    if size > MAX_BYTES:
        raise ValueError(f"draft weights are {size} bytes: more than the {MAX_BYTES} allowed")
    config = {"num_layers": draft.config.num_layers}
    config.update({k: getattr(draft.config, k) for k in CHECKED})
    (directory / "config.json").write_text(json.dumps(dict(config, **metadata), indent=1))
    return size


def load_eagle(target: LlamaLM, target_params: dict, directory=None) -> tuple[EagleDraft, dict]:
    """(EagleDraft, params) for ``target`` from a saved directory (default: the asset path)."""
    directory = pathlib.Path(directory or ASSET_DIR)
    if not (directory / "weights.npz").exists():
        raise FileNotFoundError(
            f"no EAGLE draft weights at {directory}/weights.npz: build them with "
            f"`{BUILD_COMMAND}` (scripts/smollm2_drafts_gpu.py runs it on a GPU)"
        )
    config = json.loads((directory / "config.json").read_text())
    tcfg = target.config
    for name in CHECKED:
        if config[name] != getattr(tcfg, name):
            raise ValueError(
                f"draft directory {str(directory)!r} has {name}={config[name]!r}, but the "
                f"target has {name}={getattr(tcfg, name)!r}: the draft must be trained for it"
            )
    draft = EagleDraft(eagle_config(tcfg, config["num_layers"]))
    with np.load(directory / "weights.npz") as data:
        flat = {k: data[k].view(ml_dtypes.bfloat16) for k in data.files}
    own = traverse_util.unflatten_dict(flat, sep="/")
    canonical = dataclasses.replace(draft.config, fused_projections=False)
    if tcfg.fused_projections:
        own = LlamaLM(canonical).fuse_params(own)
    params = jax.tree.map(lambda a: jnp.asarray(a, tcfg.param_dtype), own)
    params["embed"] = target_params["embed"]
    if not tcfg.tie_embeddings:
        params["lm_head"] = target_params["lm_head"]
    return draft, params
