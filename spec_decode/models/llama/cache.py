"""The Llama decoding cache: keys and values of every layer, written at each row's own end."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from jax.sharding import PartitionSpec

from spec_decode.models.llama.config import LlamaConfig

# The same names as the other models' caches, so one set of sharding rules serves them all.
CACHE_KV_AXES = ("layers", "cache_batch", "cache_sequence", "cache_heads", "cache_kv")


@struct.dataclass
class LlamaCache:
    """Keys and values of every layer; positions at or beyond a row's length are garbage.

    Attributes:
      k: [Lyr, B, L, Nkv, H] keys (after rotary), activation dtype.
      v: [Lyr, B, L, Nkv, H] values, activation dtype.
      lengths: [B] int32, valid positions per row.
    """

    k: jax.Array
    v: jax.Array
    lengths: jax.Array

    @property
    def max_length(self) -> int:
        """L, the number of positions each row can hold."""
        return self.k.shape[2]


def empty_cache(config: LlamaConfig, batch_size: int, max_length: int) -> LlamaCache:
    """Zeros of the activation dtype with room for ``max_length`` positions; lengths 0."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} is not allowed: it must be an int >= 1")
    # Not capped by config.max_length: decoders size caches a few positions past the
    # longest sequence (verification writes gamma + 1 ahead), and rotary has no table.
    if not isinstance(max_length, int) or max_length < 1:
        raise ValueError(f"max_length={max_length!r} is not allowed: it must be an int >= 1")
    shape = (config.num_layers, batch_size, max_length, config.num_kv_heads, config.head_dim)
    return LlamaCache(
        k=jnp.zeros(shape, config.dtype),
        v=jnp.zeros(shape, config.dtype),
        lengths=jnp.zeros((batch_size,), jnp.int32),
    )


def cache_logical_axes() -> LlamaCache:
    """A ``LlamaCache`` whose fields are ``PartitionSpec``s of logical cache axis names."""
    kv = PartitionSpec(*CACHE_KV_AXES)
    return LlamaCache(k=kv, v=kv, lengths=PartitionSpec("cache_batch"))
