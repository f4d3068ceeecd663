"""The contract between the decoding core and any model.

The core (``sampling``, ``rejection``, ``steps``, ``decoder``) never imports a model. A model is
anything with the members of ``LanguageModel``:

    cache = model.init_cache(params, batch_size, max_length)        # lengths == 0
    logits, cache = model.extend(params, tokens, cache)             # tokens [B, K]

``extend`` writes the K new positions of row b at ``cache.lengths[b] .. cache.lengths[b] + K - 1``
and returns their logits [B, K, V] and a cache whose lengths grew by K. Token ``tokens[b, i]``
attends to every cached position of row b below ``cache.lengths[b] + i`` and to itself.

A model may also have ``prefill(params, tokens, cache) -> cache``: ``extend`` without the logits,
for prompts, where only the cache is kept. It may skip the output layer and attend in blocks
(the Llama model does both); ``has_prefill`` says whether a model has it and ``prefill`` calls
it, or ``extend`` and drops the logits.

Rollback is pure: ``rollback(cache, shorter)`` sets the lengths. Nothing is recomputed or erased;
positions at or beyond a row's length are garbage that the next ``extend`` overwrites. The cache
must therefore hold at least ``max_length`` positions so that no write is clipped.

Caches are values (pytrees, usually ``flax.struct`` dataclasses) passed in and returned; models
are hashable (frozen dataclasses) so they can be static arguments of ``jax.jit``.

A draft may read the target's features (EAGLE-style): its final hidden states [B, K, D]. Such a
target has ``extend_features(params, tokens, cache) -> (logits, features, cache)`` and
``prefill_features(params, tokens, cache) -> (features, cache)`` (``gives_features``), and such a
draft ``extend_conditioned(params, tokens, features, cache) -> (logits, predicted, cache)``
(``reads_features``), where ``features[b, i]`` is the target's hidden state at the position
before ``tokens[b, i]`` (zeros before position 0) and ``predicted[b, i]`` the draft's guess of
the target's hidden state at the token's own position, which it reads for the next one. Both
declare ``feature_dim`` (D). A plain draft never costs a target anything for them.

Two helpers serve every implementation: ``check_tokens`` (the static checks of ``tokens`` that
every ``extend`` starts with) and ``write_at_lengths`` (writing K new cache entries at each row's
own length).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

Params = Any


@runtime_checkable
class Cache(Protocol):
    """A per-row cache: a pytree with ``lengths`` int32 [B] and a functional ``replace``."""

    lengths: jax.Array  # [B] int32: positions of each row that are valid

    def replace(self, **updates: Any) -> Cache: ...


@runtime_checkable
class LanguageModel(Protocol):
    """Everything the decoding core and the sharding helpers use of a target or a draft."""

    @property
    def vocab_size(self) -> int:
        """V: logits are [..., V] and token ids lie in [0, V)."""
        ...

    @property
    def max_length(self) -> int | None:
        """The longest prompt + generation callers may ask for; None when there is no limit.

        The decoders check it before tracing; caches are sized a few positions past it
        (verification writes gamma + 1 ahead), so ``init_cache`` must accept a larger length.
        """
        ...

    def init_cache(self, params: Params, batch_size: int, max_length: int) -> Cache:
        """An empty cache (all lengths 0) with room for ``max_length`` positions per row."""
        ...

    def extend(self, params: Params, tokens: jax.Array, cache: Cache) -> tuple[jax.Array, Cache]:
        """Process tokens [B, K] at each row's own end; return logits [B, K, V] and the cache."""
        ...

    def cache_logical_axes(self) -> Cache:
        """A cache whose array fields are ``PartitionSpec``s of logical axis names (for meshes).

        ``cache_batch`` must name the rows of every per-row array; a model whose cache holds
        nothing but per-row lengths returns ``PartitionSpec('cache_batch')`` for them.
        """
        ...


@runtime_checkable
class Prefiller(Protocol):
    """Models with the optional ``prefill``: the cache ``extend`` leaves, and no logits."""

    def prefill(self, params: Params, tokens: jax.Array, cache: Cache) -> Cache:
        """Process tokens [B, K] at each row's own end, as ``extend`` does; return the cache."""
        ...


@runtime_checkable
class SequenceScorer(Protocol):
    """Models that also score a whole sequence in one uncached pass (tests and training use it)."""

    def forward(self, params: Params, tokens: jax.Array) -> jax.Array:
        """Tokens [B, T] at positions 0..T-1 -> logits [B, T, V], as T cached ``extend``s give."""
        ...


@runtime_checkable
class FeatureTarget(Protocol):
    """Targets that also return their final hidden states, for drafts that read them."""

    @property
    def feature_dim(self) -> int:
        """D: features are [..., D]."""
        ...

    def extend_features(
        self, params: Params, tokens: jax.Array, cache: Cache
    ) -> tuple[jax.Array, jax.Array, Cache]:
        """``extend`` that also returns the hidden states of the K positions: [B, K, D]."""
        ...

    def prefill_features(
        self, params: Params, tokens: jax.Array, cache: Cache
    ) -> tuple[jax.Array, Cache]:
        """``prefill`` that returns the hidden states [B, K, D] instead of nothing."""
        ...


@runtime_checkable
class FeatureDraft(Protocol):
    """Drafts that read the target's features next to each token (``reads_features``)."""

    @property
    def feature_dim(self) -> int:
        """D: the width of the features it reads and predicts."""
        ...

    def extend_conditioned(
        self, params: Params, tokens: jax.Array, features: jax.Array, cache: Cache
    ) -> tuple[jax.Array, jax.Array, Cache]:
        """tokens [B, K], features [B, K, D] of the positions before them -> logits [B, K, V],
        predicted features [B, K, D] of the tokens' own positions, and the cache."""
        ...


def gives_features(model: Any) -> bool:
    """Whether ``model`` is a ``FeatureTarget`` (returns hidden states with its logits)."""
    return all(callable(getattr(model, m, None)) for m in ("extend_features", "prefill_features"))


def reads_features(model: Any) -> bool:
    """Whether ``model`` is a ``FeatureDraft``: its draft calls need the target's features."""
    return callable(getattr(model, "extend_conditioned", None))


def has_prefill(model: Any) -> bool:
    """Whether ``model`` has the optional ``prefill(params, tokens, cache) -> cache``."""
    return callable(getattr(model, "prefill", None))


def prefill(model: LanguageModel, params: Params, tokens: jax.Array, cache: Cache) -> Cache:
    """The cache after ``extend(params, tokens, cache)``, without asking for its logits."""
    if has_prefill(model):
        return model.prefill(params, tokens, cache)
    _, cache = model.extend(params, tokens, cache)
    return cache


def rollback(cache: Cache, lengths: jax.Array) -> Cache:
    """Set per-row lengths [B]; positions beyond them become free to overwrite."""
    return cache.replace(lengths=lengths.astype(cache.lengths.dtype))


def check_tokens(
    tokens: Any, batch_size: int | None = None, max_positions: int | None = None
) -> tuple[int, int]:
    """Static checks of ``extend``'s tokens: integer [B, K], K >= 1; returns (B, K).

    ``batch_size`` is the cache's B and ``max_positions`` its L, when the caller has a cache.
    """
    shape = np.shape(tokens)
    if len(shape) != 2 or shape[1] < 1:
        raise ValueError(
            f"tokens with shape={shape} is not allowed: it must be 2-D [B, K] with K >= 1"
        )
    dtype = jnp.result_type(tokens)
    if not jnp.issubdtype(dtype, jnp.integer):
        raise ValueError(f"tokens with dtype={dtype} is not allowed: token ids are integers")
    batch, num_tokens = shape
    if batch_size is not None and batch != batch_size:
        raise ValueError(
            f"tokens with shape={shape} is not allowed: its batch must equal the cache's "
            f"batch size {batch_size}"
        )
    if max_positions is not None and num_tokens > max_positions:
        raise ValueError(
            f"tokens with shape={shape} is not allowed: K must be <= the cache length "
            f"{max_positions}"
        )
    return batch, num_tokens


def write_at_lengths(buffer: jax.Array, new: jax.Array, lengths: jax.Array) -> jax.Array:
    """Write new [Lyr, B, K, ...] into buffer [Lyr, B, L, ...] at positions lengths[b].. of row b.

    One ``dynamic_update_slice`` per row (vmapped), in the buffer's dtype. The caller sizes L so
    that nothing is clipped: a clipped write would silently shift the row's new entries.
    """
    trailing = (0,) * (buffer.ndim - 3)

    def write_row(row_buffer, row_new, start):  # [Lyr, L, ...], [Lyr, K, ...], []
        return jax.lax.dynamic_update_slice(
            row_buffer, row_new.astype(row_buffer.dtype), (0, start, *trailing)
        )

    return jax.vmap(write_row, in_axes=(1, 1, 0), out_axes=1)(buffer, new, lengths)
