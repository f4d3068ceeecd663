"""What the model-free drafts share: argument checks and the lengths-only cache."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from spec_decode.core.validation import check_int

__all__ = ["LengthsCache", "advance", "check_int", "check_param_shape", "check_tokens"]


def check_tokens(tokens: jax.Array, batch_size: int) -> None:
    """Tokens must be integer [B, K] with K >= 1 and B the cache's batch size (static checks)."""
    shape = np.shape(tokens)
    if len(shape) != 2 or shape[1] < 1:
        raise ValueError(
            f"tokens with shape={shape} is not allowed: it must be 2-D [B, K] with K >= 1"
        )
    if shape[0] != batch_size:
        raise ValueError(
            f"tokens with batch size {shape[0]} is not allowed: it must equal the cache's "
            f"batch size {batch_size}"
        )
    if not jnp.issubdtype(jnp.result_type(tokens), jnp.integer):
        raise ValueError(
            f"tokens with dtype={jnp.result_type(tokens)} is not allowed: token ids are integers"
        )


def check_param_shape(name: str, array, expected: tuple[int, ...]) -> None:
    """Static shape check of one params entry, so a mismatched table fails before tracing."""
    if np.shape(array) != expected:
        raise ValueError(
            f"params[{name!r}] with shape={np.shape(array)} is not allowed: this draft "
            f"needs {expected}"
        )


@struct.dataclass
class LengthsCache:
    """Cache of a draft whose prediction needs no history beyond the token being extended.

    A unigram ignores context and a bigram's context is ``tokens[:, i]`` itself, which ``extend``
    receives, so only the per-row lengths are kept (to honour the contract's rollback).
    """

    lengths: jax.Array  # [B] int32


def init_lengths_cache(batch_size: int, max_length: int) -> LengthsCache:
    """An empty ``LengthsCache``; ``max_length`` is only validated (nothing is stored per row)."""
    check_int("batch_size", batch_size, 1)
    check_int("max_length", max_length, 1)
    return LengthsCache(lengths=jnp.zeros((batch_size,), jnp.int32))


def advance(cache: LengthsCache, tokens: jax.Array) -> LengthsCache:
    """The cache after ``extend`` of tokens [B, K]: every row grew by K."""
    return cache.replace(lengths=cache.lengths + tokens.shape[1])
