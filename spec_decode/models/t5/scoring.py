"""Sequence log-likelihoods as T5X's ``EncoderDecoderModel.score_batch`` computes them."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from spec_decode.models.t5.config import T5Config
from spec_decode.models.t5.network import Transformer

_REQUIRED = ("encoder_input_tokens", "decoder_input_tokens", "decoder_target_tokens")
_SEGMENT_IDS = ("encoder_segment_ids", "decoder_segment_ids")


def token_scores(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """log softmax(logits)[target]: logits [B, T, V], targets [B, T] -> [B, T] float32."""
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return jnp.take_along_axis(log_probs, targets[..., None].astype(jnp.int32), axis=-1)[..., 0]


def weighted_token_scores(
    config: T5Config, params: Any, batch: Mapping[str, jax.Array]
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(targets [B, T], loss weights [B, T], weight * log p(target_t | inputs, targets < t)).

    ``batch`` holds ``encoder_input_tokens`` [B, S], ``decoder_input_tokens`` [B, T] (targets
    shifted right, 0 as BOS), ``decoder_target_tokens`` [B, T] and optionally
    ``decoder_loss_weights`` [B, T] (default: 1 at non-padding targets) and packing segment ids,
    as in T5X. Teacher-forced, without dropout.
    """
    missing = set(_REQUIRED) - set(batch)
    if missing:
        raise ValueError(f"batch is missing {sorted(missing)}: scoring needs them")
    targets = jnp.asarray(batch["decoder_target_tokens"])
    weights = batch.get("decoder_loss_weights")
    weights = (targets > 0) if weights is None else jnp.asarray(weights)
    segments = {name: batch.get(name) for name in _SEGMENT_IDS}
    scores = _token_scores(
        config, params, batch["encoder_input_tokens"], batch["decoder_input_tokens"], targets,
        **segments,
    )  # fmt: skip
    return targets, weights, scores * weights.astype(jnp.float32)


def score_batch(config: T5Config, params: Any, batch: Mapping[str, jax.Array]) -> jax.Array:
    """Sum over target positions of log p(target | inputs, earlier targets): [B] float32.

    ``batch`` as in ``weighted_token_scores``; positions of loss weight 0 do not count.
    """
    return weighted_token_scores(config, params, batch)[2].sum(axis=-1)


@functools.partial(jax.jit, static_argnums=0)
def _token_scores(config, params, encoder, decoder_inputs, targets, **segment_ids):
    """log p(target_t | inputs, targets before t) [B, T], teacher-forced, no dropout."""
    logits = Transformer(config).apply(
        {"params": params}, encoder, decoder_inputs, targets, enable_dropout=False, **segment_ids
    )
    return token_scores(logits, targets)
