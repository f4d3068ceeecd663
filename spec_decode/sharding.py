"""Placing models on a ('data', 'model') device mesh with T5X's logical axis rules.

Every parameter and cache array of the models carries logical axis names ('vocab', 'embed',
'heads', 'cache_batch', ...; see ``LlamaLM.logical_axes`` and ``T5Decoding.logical_axes``).
Rules map each logical name to a mesh axis or to None (replicated); the first rule naming a
logical axis wins, so overrides go in front:

    mesh = make_mesh(model=4)                                 # 8 devices -> data=2, model=4
    rules = make_rules([("mlp", None)])                       # replicate the MLP, keep the rest
    params = shard_params(params, target.logical_axes(), mesh, rules)
    draft, draft_params = place_draft(draft, draft_params, mesh)      # whole on each device
    result = speculative_decode(target, params, draft, draft_params, shard_batch(prompts, mesh),
                                mesh=mesh, rules=rules)

A dimension whose size the mesh axis does not divide is replicated instead, with a warning
naming the array, its shape, the logical axis and the mesh axis size. This is what grouped-query
attention needs: 'heads' shards both the query heads N and the key/value heads Nkv, and with
Nkv < model size the key/value kernels and caches stay whole on every device while the query
heads are split. No weight is gathered at run time either way: a replicated weight is simply
stored on every device (XLA may still gather a whole KV cache after writing it in pieces, so
prefer a model axis no larger than Nkv).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA, MODEL = "data", "model"
MeshAxis = str | tuple[str, ...] | None
Rules = tuple[tuple[str, MeshAxis], ...]

# T5X's standard_logical_axis_rules (1-D activation and parameter partitioning) plus the cache
# names the models use: rows on 'data', attention heads on 'model'.
STANDARD_RULES: Rules = (
    ("batch", DATA),
    ("vocab", MODEL),
    ("embed", None),
    ("mlp", MODEL),
    ("heads", MODEL),
    ("kv", None),
    ("joined_kv", MODEL),
    ("relpos_buckets", None),
    ("abspos_buckets", None),
    ("length", None),
    ("layers", None),
    ("stack", None),
    ("mlp_activations", None),
    ("cache_batch", DATA),
    ("cache_heads", MODEL),
    ("cache_sequence", None),
    ("cache_kv", None),
)


def make_rules(overrides: Sequence[tuple[str, MeshAxis]] = (), base: Rules = STANDARD_RULES):
    """``overrides`` in front of ``base``: an override of a logical name shadows its base rule."""
    return check_rules(tuple(overrides) + tuple(base))


def check_rules(rules: Any) -> Rules:
    """Rules as a hashable tuple of (logical name, mesh axis) pairs; None means the standard."""
    if rules is None:
        return STANDARD_RULES
    allowed = "a sequence of (logical name, mesh axis name | tuple of names | None) pairs"
    if isinstance(rules, (str, bytes)) or not isinstance(rules, Sequence):
        raise ValueError(f"rules={rules!r} is not allowed: it must be {allowed}")
    checked = []
    for rule in rules:
        if not isinstance(rule, Sequence) or isinstance(rule, str) or len(rule) != 2:
            raise ValueError(f"rules entry {rule!r} is not allowed: it must be {allowed}")
        name, axis = rule
        if isinstance(axis, list):
            axis = tuple(axis)
        names = axis if isinstance(axis, tuple) else (axis,)
        if not isinstance(name, str) or not all(isinstance(a, str) for a in names if a):
            raise ValueError(f"rules entry {rule!r} is not allowed: it must be {allowed}")
        checked.append((name, axis))
    return tuple(checked)


def make_mesh(data: int | None = None, model: int = 1, devices: Sequence | None = None) -> Mesh:
    """A ('data', 'model') mesh over ``devices`` (default: all of them, every host's).

    ``data`` defaults to ``len(devices) // model``. Devices are laid out with
    ``jax.experimental.mesh_utils`` so that on GPUs and TPUs the model axis, which carries
    the per-layer reductions, stays within a host's fast interconnect; with several hosts
    the data axis is the one that spans them.
    """
    devices = list(jax.devices() if devices is None else devices)
    count = len(devices)
    if not isinstance(model, int) or isinstance(model, bool) or model < 1:
        raise ValueError(f"model={model!r} is not allowed: it must be an integer >= 1")
    if count % model:
        raise ValueError(
            f"model={model} is not allowed: it must divide the number of devices, {count}"
        )
    if data is None:
        data = count // model
    if not isinstance(data, int) or isinstance(data, bool) or data < 1:
        raise ValueError(f"data={data!r} is not allowed: it must be None or an integer >= 1")
    if data * model != count:
        raise ValueError(
            f"data={data}, model={model} is not allowed: data * model must equal the number "
            f"of devices, {count} (or pass devices=... with data * model of them)"
        )
    from jax.experimental import mesh_utils

    try:
        grid = mesh_utils.create_device_mesh((data, model), devices, allow_split_physical_axes=True)
    except (AssertionError, NotImplementedError, ValueError):
        # Host CPU devices and unusual topologies have no physical layout to follow.
        grid = np.asarray(devices).reshape(data, model)
    return Mesh(grid, (DATA, MODEL))


def _rule_table(rules: Rules) -> dict[str, MeshAxis]:
    table: dict[str, MeshAxis] = {}
    for name, axis in rules:
        table.setdefault(name, axis)
    return table


def mesh_spec(
    logical: PartitionSpec, shape: Sequence[int], mesh: Mesh, rules: Any = None, path: str = ""
) -> PartitionSpec:
    """The mesh ``PartitionSpec`` of one array from its logical one.

    A logical name without a rule is replicated; a mesh axis already used by an earlier
    dimension of the same array is not used twice (that dimension is replicated); a dimension
    the mesh axis size does not divide is replicated with a warning.
    """
    table = _rule_table(check_rules(rules))
    if len(logical) != len(shape):
        raise ValueError(
            f"logical axes {tuple(logical)} of {path or 'an array'} do not match its shape "
            f"{tuple(shape)}: one name per dimension is needed"
        )
    used: set[str] = set()
    axes = []
    for name, size in zip(logical, shape, strict=True):
        axis = table.get(name) if isinstance(name, str) else None
        names = () if axis is None else axis if isinstance(axis, tuple) else (axis,)
        for mesh_axis in names:
            if mesh_axis not in mesh.shape:
                raise ValueError(
                    f"rule {name!r} -> {axis!r} is not allowed: the mesh has axes "
                    f"{tuple(mesh.shape)}"
                )
        if used.intersection(names):
            names = ()
        parts = math.prod(mesh.shape[a] for a in names)
        if size % parts:
            warnings.warn(
                f"{path or 'array'} of shape {tuple(shape)}: logical axis {name!r} (size {size}) "
                f"is not divisible by mesh axis {axis!r} of size {parts}; that dimension is "
                "replicated",
                stacklevel=3,
            )
            names = ()
        used.update(names)
        axes.append(None if not names else names[0] if len(names) == 1 else names)
    return PartitionSpec(*axes)


def _is_spec(x) -> bool:
    return isinstance(x, PartitionSpec)


def param_shardings(params: Any, logical_axes: Any, mesh: Mesh, rules: Any = None) -> Any:
    """A tree of ``NamedSharding`` matching ``params`` (arrays or ``jax.ShapeDtypeStruct``s).

    With abstract params (``jax.eval_shape(model.init, key)``) this is what
    ``jax.jit(model.init, out_shardings=...)`` takes to create weights already sharded, never
    whole on one device.
    """
    rules = check_rules(rules)
    structure = jax.tree.structure(logical_axes, is_leaf=_is_spec)
    try:
        structure.flatten_up_to(params)
    except ValueError as error:
        raise ValueError(
            f"logical_axes do not match params ({error}): pass the logical_axes() of the model "
            "these params belong to"
        ) from None

    def one(path, logical, leaf):
        name = jax.tree_util.keystr(path)
        return NamedSharding(mesh, mesh_spec(logical, np.shape(leaf), mesh, rules, name))

    return jax.tree_util.tree_map_with_path(one, logical_axes, params, is_leaf=_is_spec)


def shard_params(params: Any, logical_axes: Any, mesh: Mesh, rules: Any = None) -> Any:
    """``params`` placed on ``mesh`` by their logical axes (``device_put`` of each array)."""
    return jax.device_put(params, param_shardings(params, logical_axes, mesh, rules))


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Every array of ``tree`` whole on every device of ``mesh``."""
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


@dataclasses.dataclass(frozen=True)
class Replicated:
    """A model whose weights are whole on every device: its caches are split over rows only.

    Wrap a replicated draft in it so that the decoders keep the draft's cache heads whole too;
    the draft then runs on each device without any collective. Everything else (``vocab_size``,
    ``max_length``, ``init_cache``, ``extend``, ...) is the wrapped model's. Hashable when the
    model is.
    """

    model: Any

    def __getattr__(self, name: str):
        if name == "model":  # not yet set (copying, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.model, name)

    def cache_logical_axes(self) -> Any:
        """The model's cache axes with every name but the row axis dropped (None)."""

        def rows_only(spec):
            return PartitionSpec(*(n if n in _ROW_NAMES else None for n in spec))

        return jax.tree.map(rows_only, self.model.cache_logical_axes(), is_leaf=_is_spec)


_ROW_NAMES = ("batch", "cache_batch")


def place_draft(
    draft: Any, params: Any, mesh: Mesh, rules: Any = None, *, shard_draft: bool = False
) -> tuple[Any, Any]:
    """A draft model and its params on ``mesh``: (``Replicated(draft)``, params whole on every
    device) by default, the cheapest for a small draft, or split like a target by its logical
    axes when ``shard_draft``. Model-free drafts (``params=None``) come back unchanged."""
    if not isinstance(shard_draft, bool):
        raise ValueError(f"shard_draft={shard_draft!r} is not allowed: it must be True or False")
    if params is None:
        return draft, None
    if shard_draft:
        return draft, shard_params(params, draft.logical_axes(), mesh, rules)
    return Replicated(draft), replicate(params, mesh)


def batch_spec(ndim: int, name: str = "batch") -> PartitionSpec:
    """The logical spec of a per-row array: rows first, the other dimensions replicated."""
    return PartitionSpec(name, *([None] * (ndim - 1)))


def shard_batch(tree: Any, mesh: Mesh, rules: Any = None) -> Any:
    """Arrays with rows first (prompts [B, P], encoder tokens [B, S]) split over rows."""
    rules = check_rules(rules)

    def one(x):
        spec = mesh_spec(batch_spec(np.ndim(x)), np.shape(x), mesh, rules, "batch array")
        return jax.device_put(x, NamedSharding(mesh, spec))

    return jax.tree.map(one, tree)


def constrain(tree: Any, logical_axes: Any, mesh: Mesh, rules: Any = None) -> Any:
    """``with_sharding_constraint`` of each array by its logical spec (inside ``jax.jit``)."""
    rules = check_rules(rules)

    def one(path, logical, x):
        spec = mesh_spec(logical, x.shape, mesh, rules, jax.tree_util.keystr(path))
        return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))

    return jax.tree_util.tree_map_with_path(one, logical_axes, tree, is_leaf=_is_spec)


def constrain_rows(tree: Any, mesh: Mesh, rules: Any = None) -> Any:
    """Constrain per-row arrays (rows first) to be split over rows, by the 'batch' rule."""
    specs = jax.tree.map(lambda x: batch_spec(x.ndim), tree)
    return constrain(tree, specs, mesh, rules)


def constrain_cache(model: Any, cache: Any, mesh: Mesh, rules: Any = None) -> Any:
    """A cache constrained by ``model.cache_logical_axes()`` (the contract); None stays None."""
    if cache is None:
        return cache
    return constrain(cache, model.cache_logical_axes(), mesh, rules)
