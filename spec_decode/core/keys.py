"""Per-row PRNG keys: the randomness of row b never depends on the other rows of its batch."""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np

_ALLOWED = (
    "pass an integer seed, a key from jax.random.key / jax.random.PRNGKey, or a batch of B such "
    "keys"
)


def as_typed_key(key) -> jax.Array:
    """Typed keys from an int seed (``jax.random.key(seed)``), new-style typed keys or legacy
    raw uint32 [..., 2] keys."""
    if isinstance(key, numbers.Integral) and not isinstance(key, (bool, np.bool_)):
        return jax.random.key(int(key))
    if not hasattr(key, "dtype") or not hasattr(key, "shape"):
        raise ValueError(f"key={key!r} of type {type(key).__name__} is not allowed: {_ALLOWED}")
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    if key.dtype != jnp.uint32 or key.shape[-1:] != (2,):
        raise ValueError(
            f"key with dtype={key.dtype} and shape={key.shape} is not allowed: {_ALLOWED}"
        )
    return jax.random.wrap_key_data(key)


def row_keys(key: jax.Array, batch_size: int) -> jax.Array:
    """One typed key per row [B]: a single key is split into B; B keys are used as they are.

    Pass B keys (e.g. one per example id) when a row must decode the same inside any batch.
    """
    key = as_typed_key(key)
    if key.ndim == 0:
        return jax.random.split(key, batch_size)
    if key.shape == (batch_size,):
        return key
    raise ValueError(
        f"key with shape={key.shape} is not allowed: "
        f"pass one key or {batch_size} keys (one per row)"
    )


def round_keys(keys: jax.Array, step: jax.Array, num: int) -> jax.Array:
    """Keys [B] and a round counter -> [num, B] fresh keys for this round, per row."""
    per_row = jax.vmap(lambda k: jax.random.split(jax.random.fold_in(k, step), num))(keys)
    return jnp.swapaxes(per_row, 0, 1)
