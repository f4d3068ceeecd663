"""T5X's teacher-forced loss: cross-entropy plus z-loss, optionally label-smoothed.

Per target position t, with log_z = logsumexp(logits_t) and soft targets y (one-hot, or with
label smoothing s: 1 - s on the target and s / (V - 1) elsewhere),

    loss_t = log_z - sum_v y_v logits_t[v] - c  +  z_loss * log_z ** 2

where c is the entropy of y (0 without smoothing), so a perfect prediction costs 0. The
z-loss keeps log_z near 0, the softmax normaliser out of bfloat16's trouble (T5X's default
1e-4). Positions count with their loss weight (0 at padding).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def cross_entropy_sums(
    logits: jax.Array,
    targets: jax.Array,
    weights: jax.Array,
    z_loss: float = 1e-4,
    label_smoothing: float = 0.0,
) -> dict[str, jax.Array]:
    """Weighted sums over [B, T]: 'loss' (z-loss included), 'z_loss', 'correct', 'weight'.

    logits [B, T, V] (float32), targets [B, T] int, weights [B, T].
    """
    V = logits.shape[-1]
    logits = logits.astype(jnp.float32)
    log_z = jax.nn.logsumexp(logits, axis=-1)  # [B, T]
    target_logit = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    if label_smoothing:
        confidence = 1.0 - label_smoothing
        low = label_smoothing / (V - 1)
        # sum_v y_v logits[v] with y = low everywhere plus (confidence - low) on the target.
        soft_logit = low * jnp.sum(logits, axis=-1) + (confidence - low) * target_logit
        entropy = -(confidence * jnp.log(confidence) + (V - 1) * low * jnp.log(low + 1e-20))
        cross_entropy = log_z - soft_logit - entropy
    else:
        cross_entropy = log_z - target_logit
    z = z_loss * jnp.square(log_z)
    weights = weights.astype(jnp.float32)
    correct = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
    return {
        "loss": jnp.sum((cross_entropy + z) * weights),
        "z_loss": jnp.sum(z * weights),
        "correct": jnp.sum(correct * weights),
        "weight": jnp.sum(weights),
    }
