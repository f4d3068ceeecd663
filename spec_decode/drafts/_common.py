"""What the model-free drafts share: the contract's members that do not depend on the draft.

``ModelFreeDraft`` holds ``vocab_size``, has no length limit, keeps the lengths-only cache and
checks tokens with the contract's ``check_tokens``; a draft adds its ``extend`` (and its own
cache, if it needs history).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.sharding import PartitionSpec

from spec_decode.core.contract import check_tokens
from spec_decode.core.validation import check_int

__all__ = [
    "LengthsCache",
    "ModelFreeDraft",
    "advance",
    "check_int",
    "check_param_shape",
    "check_tokens",
]


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


def advance(cache: LengthsCache, tokens: jax.Array) -> LengthsCache:
    """The cache after ``extend`` of tokens [B, K]: every row grew by K."""
    return cache.replace(lengths=cache.lengths + tokens.shape[1])


@dataclasses.dataclass(frozen=True)
class ModelFreeDraft:
    """The contract minus ``extend`` for a draft without weights to shard or length limit.

    Attributes:
      vocab_size: V, the width of the logits.
    """

    vocab_size: int
    # Counts and lookups work at any position, so no length is too long.
    max_length: ClassVar[None] = None

    def __post_init__(self):
        check_int("vocab_size", self.vocab_size, 1)

    def init_cache(self, params, batch_size: int, max_length: int) -> LengthsCache:
        """Lengths 0; ``max_length`` is only validated (nothing is stored per position)."""
        del params  # the cache holds no per-position data
        check_int("batch_size", batch_size, 1)
        check_int("max_length", max_length, 1)
        return LengthsCache(lengths=jnp.zeros((batch_size,), jnp.int32))

    def cache_logical_axes(self) -> LengthsCache:
        """Only per-row lengths: rows are the one axis to name."""
        return LengthsCache(lengths=PartitionSpec("cache_batch"))

    def check_tokens(self, tokens: jax.Array, cache) -> tuple[int, int]:
        """The contract's static checks of ``extend``'s tokens [B, K] against ``cache``; (B, K)."""
        return check_tokens(tokens, cache.lengths.shape[0])
