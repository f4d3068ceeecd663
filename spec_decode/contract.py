"""The contract between the decoding core and any model.

The core (``sampling``, ``accept_reject``, ``steps``, ``decode``) never imports a model. A model
is anything with a ``vocab_size``, an ``init_cache`` and an ``extend``:

    cache = model.init_cache(params, batch_size, max_length)        # lengths == 0
    logits, cache = model.extend(params, tokens, cache)             # tokens [B, K]

``extend`` writes the K new positions of row b at ``cache.lengths[b] .. cache.lengths[b] + K - 1``
and returns their logits [B, K, V] and a cache whose lengths grew by K. Token ``tokens[b, i]``
attends to every cached position of row b below ``cache.lengths[b] + i`` and to itself.

Rollback is pure: ``cache.replace(lengths=shorter)``. Nothing is recomputed or erased; positions
at or beyond a row's length are garbage that the next ``extend`` overwrites. The cache must
therefore hold at least ``max_length`` positions so that no write is clipped.

Caches are values (pytrees, usually ``flax.struct`` dataclasses) passed in and returned; models
are hashable (frozen dataclasses) so they can be static arguments of ``jax.jit``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import jax

Params = Any


@runtime_checkable
class Cache(Protocol):
    """A per-row cache: a pytree with ``lengths`` int32 [B] and a functional ``replace``."""

    lengths: jax.Array  # [B] int32: positions of each row that are valid

    def replace(self, **updates: Any) -> Cache: ...


@runtime_checkable
class LanguageModel(Protocol):
    """What the decoding core needs from a target or a draft."""

    @property
    def vocab_size(self) -> int: ...

    def init_cache(self, params: Params, batch_size: int, max_length: int) -> Cache:
        """An empty cache (all lengths 0) with room for ``max_length`` positions per row."""
        ...

    def extend(self, params: Params, tokens: jax.Array, cache: Cache) -> tuple[jax.Array, Cache]:
        """Process tokens [B, K] at each row's own end; return logits [B, K, V] and the cache."""
        ...


def rollback(cache: Cache, lengths: jax.Array) -> Cache:
    """Set per-row lengths [B]; positions beyond them become free to overwrite."""
    return cache.replace(lengths=lengths.astype(cache.lengths.dtype))
