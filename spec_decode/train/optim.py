"""T5X's optimizer and learning rate, as optax.

Adafactor with T5X's defaults (``t5x.adafactor.Adafactor``): second-moment decay
1 - (step + 1) ** -0.8 (decay rate 0.8, step offset 0), factored second moments for matrices
whose dims are both >= 128, updates scaled by each parameter's RMS (floor 1e-3), update RMS
clipped at 1.0, no momentum, epsilon 1e-30, no weight decay.

T5X's schedule (``factors='constant * rsqrt_decay'``): lr(step) = base / sqrt(max(step,
warmup)). With T5's numbers, base 1.0 and warmup 10,000: 0.01 for the first 10k steps, then
0.0032 at 100k and 0.001 at 1M. ``linear_warmup`` multiplies by min(1, step / warmup) (T5X's
'linear_warmup' factor), for runs that start from random weights with a short warmup.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def rsqrt_schedule(
    base_learning_rate: float = 1.0, warmup_steps: int = 10_000, linear_warmup: bool = False
) -> optax.Schedule:
    """step -> base / sqrt(max(step, warmup_steps)) (times the linear warmup, if asked)."""
    if not base_learning_rate > 0:
        raise ValueError(
            f"base_learning_rate={base_learning_rate!r} is not allowed: it must be > 0"
        )
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 1:
        raise ValueError(f"warmup_steps={warmup_steps!r} is not allowed: it must be an int >= 1")

    def schedule(step):
        step = jnp.asarray(step, jnp.float32)
        rate = base_learning_rate * jax.lax.rsqrt(jnp.maximum(step, warmup_steps))
        if linear_warmup:
            rate = rate * jnp.minimum(1.0, step / warmup_steps)
        return rate

    return schedule


def adafactor(learning_rate: optax.ScalarOrSchedule) -> optax.GradientTransformation:
    """optax's Adafactor with T5X's defaults (see the module docstring)."""
    return optax.adafactor(
        learning_rate=learning_rate,
        min_dim_size_to_factor=128,
        decay_rate=0.8,
        decay_offset=0,
        multiply_by_parameter_scale=True,
        clipping_threshold=1.0,
        momentum=None,
        weight_decay_rate=None,
        eps=1e-30,
        factored=True,
    )
