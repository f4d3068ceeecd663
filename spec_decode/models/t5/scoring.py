"""Sequence log-likelihoods as T5X's ``EncoderDecoderModel.score_batch`` computes them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from spec_decode.models.t5.config import T5Config
from spec_decode.models.t5.network import Transformer


def token_scores(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """log softmax(logits)[target]: logits [B, T, V], targets [B, T] -> [B, T] float32."""
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return jnp.take_along_axis(log_probs, targets[..., None].astype(jnp.int32), axis=-1)[..., 0]


def score_batch(config: T5Config, params: Any, batch: Mapping[str, jax.Array]) -> jax.Array:
    """Sum over target positions of log p(target | inputs, earlier targets): [B] float32.

    ``batch`` holds ``encoder_input_tokens`` [B, S], ``decoder_input_tokens`` [B, T] (targets
    shifted right, 0 as BOS), ``decoder_target_tokens`` [B, T] and optionally
    ``decoder_loss_weights`` [B, T] (default: 1 at non-padding targets), as in T5X.
    """
    missing = {"encoder_input_tokens", "decoder_input_tokens", "decoder_target_tokens"} - set(batch)
    if missing:
        raise ValueError(f"batch is missing {sorted(missing)}: score_batch needs them")
    targets = jnp.asarray(batch["decoder_target_tokens"])
    weights = batch.get("decoder_loss_weights")
    weights = (targets > 0) if weights is None else jnp.asarray(weights)
    logits = Transformer(config).apply(
        {"params": params},
        jnp.asarray(batch["encoder_input_tokens"]),
        jnp.asarray(batch["decoder_input_tokens"]),
        targets,
        enable_dropout=False,
    )
    return jnp.sum(token_scores(logits, targets) * weights.astype(jnp.float32), axis=-1)
