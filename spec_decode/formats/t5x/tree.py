"""Parameter trees as flat {path: leaf} dicts, and the check that a checkpoint fits a model.

Paths are tuples of keys; messages show them the T5X way, 'decoder/layers_0/mlp/wo/kernel'.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Path = tuple[str, ...]


def path_name(path: Path) -> str:
    return "/".join(path)


def flatten(tree: Mapping, is_leaf: Callable[[Any], bool] = lambda x: False) -> dict[Path, Any]:
    """Nested mappings -> {path: leaf}; a mapping for which ``is_leaf`` holds stays a leaf."""
    flat = {}

    def visit(node, prefix):
        if isinstance(node, Mapping) and not is_leaf(node):
            for key, child in node.items():
                visit(child, (*prefix, str(key)))
        else:
            flat[prefix] = node

    visit(tree, ())
    return flat


def unflatten(flat: Mapping[Path, Any]) -> dict:
    """{path: leaf} -> nested plain dicts."""
    tree: dict = {}
    for path, leaf in flat.items():
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = leaf
    return tree


def bare_params(params: Any) -> Mapping:
    """The parameter tree itself, also when given Flax variables ``{'params': ...}``."""
    if not isinstance(params, Mapping) or not params:
        raise ValueError(
            f"params of type {type(params).__name__} is not allowed: it must be a non-empty "
            "nested mapping of arrays (a T5X 'target' tree)"
        )
    if set(params.keys()) <= {"params", "params_axes"} and "params" in params:
        return params["params"]
    return params


def check_params_match(expected: Any, loaded: Any, source: str = "the checkpoint") -> None:
    """Raise a ValueError unless ``loaded`` has exactly ``expected``'s leaves and shapes.

    Both are nested mappings whose leaves have a ``.shape`` (arrays, ``jax.ShapeDtypeStruct``
    from ``jax.eval_shape``). The message names every missing, unexpected and mis-shaped leaf.
    """
    want = {path: tuple(leaf.shape) for path, leaf in flatten(bare_params(expected)).items()}
    have = {path: tuple(leaf.shape) for path, leaf in flatten(bare_params(loaded)).items()}
    problems = []
    for path in sorted(want.keys() - have.keys()):
        problems.append(f"missing leaf '{path_name(path)}' (the model expects shape {want[path]})")
    for path in sorted(have.keys() - want.keys()):
        problems.append(f"unexpected leaf '{path_name(path)}' with shape {have[path]}")
    for path in sorted(want.keys() & have.keys()):
        if want[path] != have[path]:
            problems.append(
                f"leaf '{path_name(path)}' has shape {have[path]} in {source} but the model "
                f"expects {want[path]}"
            )
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise ValueError(f"{source} does not match the model's parameters:\n  {shown}{more}")
