"""T5 as a decoding-core model: the contract's ``init_cache`` and ``extend`` for the decoder.

The decoder needs the encoder, so the contract's ``params`` is a ``T5DecodeParams``: the T5
params and the encoder input tokens of the batch. ``init_cache`` runs the encoder once and keeps its
cross-attention keys and values; every ``extend`` (or ``prefill``, the contract's optional
extend without logits) then runs only the decoder.

    model = T5Decoding(config)
    inputs = make_t5_inputs(params, encoder_input_tokens)          # tokens [B, S], 0 = padding
    cache = model.init_cache(inputs, batch_size=B, max_length=L)
    logits, cache = model.extend(inputs, jnp.zeros((B, 1), jnp.int32), cache)   # BOS is 0

Decoder tokens follow T5X: the targets shifted right with 0 as BOS, so the first token fed is
0 and the logits at position t predict target t.

A worked example (one row, K = 3 after 2 cached tokens): the row's length is 2, so the new
tokens sit at positions 2, 3, 4 and attend to keys at positions

    query 2: 0 1 2          (relative positions -2 -1 0)
    query 3: 0 1 2 3        (-3 -2 -1 0)
    query 4: 0 1 2 3 4      (-4 -3 -2 -1 0)

whatever garbage the cache holds at slots 2.. from a rolled-back step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import flax
import jax
import jax.numpy as jnp
from flax import struct
from flax.linen import partitioning
from jax.sharding import PartitionSpec

from spec_decode.core.contract import check_tokens, write_at_lengths
from spec_decode.models.t5 import fusion
from spec_decode.models.t5.cache import T5Cache
from spec_decode.models.t5.config import T5Config
from spec_decode.models.t5.network import Transformer

Params = Any

# The same names as the other models' caches, so one set of sharding rules serves them all.
_CACHE_KV_AXES = ("layers", "cache_batch", "cache_sequence", "cache_heads", "cache_kv")


@struct.dataclass
class T5DecodeParams:
    """The contract's ``params`` for ``T5Decoding``: weights plus what the encoder reads.

    Attributes:
      params: the T5 parameter tree (``token_embedder``, ``encoder``, ``decoder`` at the top,
        as in a T5X checkpoint's ``target``).
      encoder_input_tokens: [B, S] int32, 0 = padding.
    """

    params: Params
    encoder_input_tokens: jax.Array


# The former name, which users import.
T5Inputs = T5DecodeParams


def make_t5_inputs(params: Params, encoder_input_tokens: Any) -> T5DecodeParams:
    """Bundle T5 params (bare, or Flax variables ``{'params': ...}``) with encoder tokens [B, S]."""
    if isinstance(params, T5DecodeParams):
        raise ValueError("params is already a T5DecodeParams: pass its .params")
    if isinstance(params, Mapping) and "params" in params:
        params = params["params"]  # Flax variables rather than the bare tree
    tokens = jnp.asarray(encoder_input_tokens)
    if tokens.ndim != 2 or not jnp.issubdtype(tokens.dtype, jnp.integer):
        raise ValueError(
            f"encoder_input_tokens (shape {tokens.shape}, dtype {tokens.dtype}) is not allowed: "
            "it must be an integer array [B, S]"
        )
    return T5DecodeParams(params=params, encoder_input_tokens=tokens.astype(jnp.int32))


@dataclasses.dataclass(frozen=True)
class T5Decoding:
    """The model contract (``vocab_size``, ``init_cache``, ``extend``...) for a T5 decoder.

    Hashable, so it can be a static argument of ``jax.jit``; its params are a
    ``T5DecodeParams``.
    """

    config: T5Config

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    @property
    def max_length(self) -> None:
        """No limit: relative position buckets cover any decoder length."""
        return None

    @property
    def fused(self) -> T5Decoding:
        """This model with the fused parameter layout (``fuse_params`` makes its params)."""
        return T5Decoding(dataclasses.replace(self.config, fused_projections=True))

    def fuse_params(self, params: Params) -> Params:
        """T5X's tree -> the fused one, for ``self.fused`` (see ``fusion.py``)."""
        return fusion.fuse_params(self.config, params)

    def unfuse_params(self, params: Params) -> Params:
        """The inverse of ``fuse_params``: T5X's tree, as checkpoints hold it."""
        return fusion.unfuse_params(self.config, params)

    @property
    def module(self) -> Transformer:
        """The Flax module (T5X's ``Transformer``), for ``init`` and full forward passes."""
        return Transformer(self.config)

    def init_variables(self, key: jax.Array, batch_size: int = 1, length: int = 1) -> dict:
        """Random Flax variables: ``{'params': ..., 'params_axes': ...}`` (T5X's initialisers)."""
        tokens = jnp.ones((batch_size, length), jnp.int32)
        return self.module.init(key, tokens, tokens, tokens, enable_dropout=False)

    def init(self, key: jax.Array) -> Params:
        """Random parameters: the plain tree of ``network.py``'s docstring."""
        return self.init_variables(key)["params"]

    def logical_axes(self) -> Params:
        """A tree matching the params with a ``PartitionSpec`` of T5X logical axis names each."""
        variables = jax.eval_shape(self.init_variables, jax.random.key(0))
        return flax.core.unfreeze(partitioning.get_axis_names(variables["params_axes"]))

    def cache_logical_axes(self) -> T5Cache:
        """A ``T5Cache`` whose fields are ``PartitionSpec``s of logical cache axis names."""
        kv = PartitionSpec(*_CACHE_KV_AXES)
        return T5Cache(
            self_keys=kv,
            self_values=kv,
            cross_keys=kv,
            cross_values=kv,
            encoder_mask=PartitionSpec("cache_batch", "cache_sequence"),
            lengths=PartitionSpec("cache_batch"),
        )

    def init_cache(self, params: T5DecodeParams, batch_size: int, max_length: int) -> T5Cache:
        """Run the encoder; an empty cache (lengths 0) with ``max_length`` decoder positions."""
        _check_inputs(params)
        batch, _ = params.encoder_input_tokens.shape
        if not isinstance(batch_size, int) or batch_size != batch:
            raise ValueError(
                f"batch_size={batch_size!r} is not allowed: it must equal the batch of "
                f"encoder_input_tokens, {batch}"
            )
        if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
            raise ValueError(f"max_length={max_length!r} is not allowed: it must be an int >= 1")
        cfg = self.config
        variables = {"params": params.params}
        tokens = params.encoder_input_tokens
        encoded = self.module.apply(variables, tokens, enable_dropout=False, method="encode")
        cross_keys, cross_values = self.module.apply(
            variables, encoded, method="cross_attention_kv"
        )
        shape = (cfg.num_decoder_layers, batch, max_length, cfg.num_heads, cfg.head_dim)
        return T5Cache(
            self_keys=jnp.zeros(shape, cfg.activation_dtype),
            self_values=jnp.zeros(shape, cfg.activation_dtype),
            cross_keys=cross_keys,
            cross_values=cross_values,
            encoder_mask=tokens > 0,
            lengths=jnp.zeros((batch,), jnp.int32),
        )

    def extend(
        self, params: T5DecodeParams, tokens: jax.Array, cache: T5Cache
    ) -> tuple[jax.Array, T5Cache]:
        """Decoder tokens [B, K] at each row's own end -> logits [B, K, V] float32, new cache.

        Token i of row b sits at position lengths[b] + i and attends to cached positions below
        lengths[b] and to new tokens 0..i; its keys and values overwrite slots
        lengths[b] .. lengths[b] + K - 1. Any K >= 1 works (a draft step, verification, a
        prefill of decoder prompt tokens).
        """
        logits, new_kv = self._apply("extend", params, tokens, cache)
        return logits, _write(cache, new_kv, tokens.shape[1])

    def prefill(self, params: T5DecodeParams, tokens: jax.Array, cache: T5Cache) -> T5Cache:
        """The cache ``extend`` leaves for decoder tokens [B, K], without the output layer.

        The contract's optional ``prefill`` (``core/prefill.py`` calls it for decoder prompts):
        the final norm and the [B, K, V] logits projection are never built.
        """
        new_kv = self._apply("prefill", params, tokens, cache)
        return _write(cache, new_kv, tokens.shape[1])

    def _apply(self, method: str, params: T5DecodeParams, tokens: jax.Array, cache: T5Cache):
        _check_inputs(params)
        check_tokens(tokens, cache.lengths.shape[0], cache.max_length)
        return self.module.apply({"params": params.params}, tokens, cache, method=method)

    def forward(
        self,
        params: T5DecodeParams,
        tokens: jax.Array,
        *,
        decoder_target_tokens: jax.Array | None = None,
    ) -> jax.Array:
        """Uncached teacher-forced logits [B, T, V] of decoder tokens [B, T] (T5X's ``__call__``
        without dropout), as T cached ``extend``s give.

        Without ``decoder_target_tokens`` no target position counts as padding, which is what
        cached decoding computes.
        """
        _check_inputs(params)
        check_tokens(tokens)
        if decoder_target_tokens is None:
            decoder_target_tokens = jnp.ones_like(tokens)
        return self.module.apply(
            {"params": params.params},
            params.encoder_input_tokens,
            tokens,
            decoder_target_tokens,
            enable_dropout=False,
        )


def _write(cache: T5Cache, new_kv: tuple[jax.Array, jax.Array], num_tokens: int) -> T5Cache:
    """Write new keys, values [Lyr, B, K, N, H] at each row's end; lengths grow by K."""
    new_keys, new_values = new_kv
    return cache.replace(
        self_keys=write_at_lengths(cache.self_keys, new_keys, cache.lengths),
        self_values=write_at_lengths(cache.self_values, new_values, cache.lengths),
        lengths=cache.lengths + num_tokens,
    )


def _check_inputs(params: Any) -> None:
    if not isinstance(params, T5DecodeParams):
        raise ValueError(
            f"params of type {type(params).__name__} is not allowed: T5Decoding needs a "
            "T5DecodeParams (formerly T5Inputs; build it with make_t5_inputs(params, "
            "encoder_input_tokens))"
        )
