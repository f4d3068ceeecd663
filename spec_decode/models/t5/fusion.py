"""T5X's parameter tree <-> the fused layout of ``T5Config(fused_projections=True)``.

Checkpoints and ``spec_decode.formats.t5x`` keep T5X's tree; ``fuse_params`` makes the fused one
once, at load, and ``unfuse_params`` gives back exactly the same arrays. Per layer:

    encoder attention, decoder self_attention:  query, key, value [D, N*H] -> qkv [D, 3, N*H]
    decoder encoder_decoder_attention:          key, value [D, N*H]        -> kv  [D, 2, N*H]
    mlp (gated, P = len(mlp_activations) > 1):  wi_0 .. wi_{P-1} [D, F]    -> wi_fused [D, P, F]

Everything else (the cross-attention ``query``, ``out``, ``wo``, norms, embeddings) is shared.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from spec_decode.models.t5.config import T5Config

Params = Any

# (stack, attention module) -> (canonical kernel names, fused kernel name)
_ATTENTION = {
    ("encoder", "attention"): (("query", "key", "value"), "qkv"),
    ("decoder", "self_attention"): (("query", "key", "value"), "qkv"),
    ("decoder", "encoder_decoder_attention"): (("key", "value"), "kv"),
}


def _join(module: dict, names: tuple[str, ...], fused: str, where: str) -> dict:
    missing = [name for name in names if name not in module]
    if missing:
        raise ValueError(
            f"params at {where} lack {missing} (keys {sorted(module)}): fuse_params takes T5X's "
            "canonical tree, not one already fused"
        )
    module = dict(module)
    kernels = [module.pop(name)["kernel"] for name in names]
    module[fused] = {"kernel": jnp.stack(kernels, axis=1)}
    return module


def _split(module: dict, names: tuple[str, ...], fused: str, where: str) -> dict:
    if fused not in module:
        raise ValueError(
            f"params at {where} lack {fused!r} (keys {sorted(module)}): unfuse_params takes "
            "the fused tree that fuse_params makes"
        )
    module = dict(module)
    kernel = module.pop(fused)["kernel"]  # [D, P, out]
    for index, name in enumerate(names):
        module[name] = {"kernel": kernel[:, index]}
    return module


def _convert(config: T5Config, params: Params, convert) -> Params:
    params = dict(params)
    parts = len(config.mlp_activations)
    depths = {"encoder": config.num_encoder_layers, "decoder": config.num_decoder_layers}
    for stack, depth in depths.items():
        stack_params = dict(params[stack])
        for index in range(depth):
            layer = dict(stack_params[f"layers_{index}"])
            where = f"{stack}/layers_{index}"
            for (owner, name), (names, fused) in _ATTENTION.items():
                if owner == stack:
                    layer[name] = convert(layer[name], names, fused, f"{where}/{name}")
            if parts > 1:
                names = tuple(f"wi_{i}" for i in range(parts))
                layer["mlp"] = convert(layer["mlp"], names, "wi_fused", f"{where}/mlp")
            stack_params[f"layers_{index}"] = layer
        params[stack] = stack_params
    return params


def fuse_params(config: T5Config, params: Params) -> Params:
    """T5X's tree -> the fused layout (stacking kernels; other arrays are not copied)."""
    return _convert(config, params, _join)


def unfuse_params(config: T5Config, params: Params) -> Params:
    """The inverse of ``fuse_params``: T5X's tree, as checkpoints hold it."""
    return _convert(config, params, _split)
