"""A tiny history-dependent model for testing the decoding core without a neural network.

logits after token t_i = a[t_i] + b[t_{i-1}] (a trigram-like model): it depends on the cache,
so a wrong rollback or a wrong write position changes its outputs.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct
from jax.sharding import PartitionSpec


@struct.dataclass
class ToyCache:
    history: jax.Array  # [B, L] int32
    lengths: jax.Array  # [B] int32


@dataclasses.dataclass(frozen=True)
class ToyLM:
    vocab: int
    max_length: int | None = None

    @property
    def vocab_size(self) -> int:
        return self.vocab

    def init(self, key, scale: float = 2.0):
        ka, kb = jax.random.split(key)
        return {
            "a": scale * jax.random.normal(ka, (self.vocab, self.vocab)),
            "b": scale * jax.random.normal(kb, (self.vocab, self.vocab)),
        }

    def init_cache(self, params, batch_size, max_length):
        return ToyCache(
            history=jnp.zeros((batch_size, max_length), jnp.int32),
            lengths=jnp.zeros((batch_size,), jnp.int32),
        )

    def cache_logical_axes(self):
        return ToyCache(
            history=PartitionSpec("cache_batch", "cache_sequence"),
            lengths=PartitionSpec("cache_batch"),
        )

    def extend(self, params, tokens, cache):
        batch, k = tokens.shape
        write = jax.vmap(lambda h, t, at: jax.lax.dynamic_update_slice(h, t, (at,)))
        history = write(cache.history, tokens.astype(jnp.int32), cache.lengths)
        pos = cache.lengths[:, None] + jnp.arange(k)[None, :]  # [B, K]
        prev = jnp.take_along_axis(history, jnp.maximum(pos - 1, 0), axis=1)
        prev = jnp.where(pos > 0, prev, 0)
        logits = params["a"][tokens] + params["b"][prev]  # [B, K, V]
        return logits, ToyCache(history=history, lengths=cache.lengths + k)
