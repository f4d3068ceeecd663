"""The activation and parameter dtypes the model families support, stored by name in configs."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

DTYPES = ("float32", "bfloat16")


def dtype_name(field: str, value: Any) -> str:
    """``value`` (a name or a numpy/jax dtype) as its name, so a frozen config stays hashable."""
    try:
        name = jnp.dtype(value).name
    except TypeError:
        name = None
    if name not in DTYPES:
        raise ValueError(f"{field}={value!r} is not allowed: it must be one of {DTYPES}")
    return name
