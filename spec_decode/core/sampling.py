"""Sampling as adjusted distributions (paper section 2.2).

Argmax, temperature, top-k and top-p are all "sample from an adjusted distribution". The same
adjustment is applied to the target's and the draft's logits, and speculative decoding is then
exact for the adjusted target distribution. Probabilities are float32 whatever the model dtype.

Order of the adjustments: temperature, then top-k, then top-p (as in most samplers). A
temperature of 0 means argmax: the one-hot of the largest logit, ties to the lowest id; top-k
and top-p are then irrelevant. A tiny positive temperature (down to the smallest float) gives
the limit it approaches, all the mass on the largest logit(s), never a NaN: the logits are
shifted so their maximum is 0 before they are scaled, and the scale is clamped to float32's
range.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    """Static (hashable) sampling settings; a change recompiles, as with any static field.

    Attributes:
      temperature: 0 for argmax, else logits are divided by it. Finite and >= 0.
      top_k: keep the k most likely tokens (ties at the k-th value are all kept); 0 = off.
      top_p: keep the smallest set of most likely tokens whose mass reaches top_p; 1 = off.

    Numbers of any numeric type are accepted (Python, numpy or 0-d JAX scalars) and stored as
    Python ``float`` / ``int``, so equal settings hash equal and compile once.
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    def __post_init__(self):
        validate_sampling(self.temperature, self.top_k, self.top_p)
        object.__setattr__(self, "temperature", float(_scalar(self.temperature)))
        object.__setattr__(self, "top_k", int(_scalar(self.top_k)))
        object.__setattr__(self, "top_p", float(_scalar(self.top_p)))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def _scalar(value):
    """A numpy, ml_dtypes (bfloat16) or concrete 0-d JAX number as a Python int / float; any
    other value unchanged (and then refused by the checks)."""
    dtype, shape = getattr(value, "dtype", None), getattr(value, "shape", None)
    if dtype is None or shape != () or isinstance(value, jax.core.Tracer):
        return value
    if jnp.issubdtype(dtype, jnp.integer):
        return int(value)
    if jnp.issubdtype(dtype, jnp.floating):
        return float(value)
    return value


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def validate_sampling(temperature: float, top_k: int, top_p: float) -> None:
    """Raise a ValueError naming the argument, its value and what is allowed."""
    t, k, p = _scalar(temperature), _scalar(top_k), _scalar(top_p)
    if not _is_real(t) or not 0 <= t < math.inf:
        raise ValueError(
            f"temperature={temperature!r} is not allowed: it must be a finite number >= 0 "
            "(0 = argmax)"
        )
    if not isinstance(k, numbers.Integral) or isinstance(k, (bool, np.bool_)) or k < 0:
        raise ValueError(f"top_k={top_k!r} is not allowed: it must be an integer >= 0 (0 = off)")
    if not _is_real(p) or not 0 < p <= 1:
        raise ValueError(f"top_p={top_p!r} is not allowed: it must be a number in (0, 1] (1 = off)")


def adjusted_probs(logits: jax.Array, config: SamplingConfig) -> jax.Array:
    """Logits [..., V] (any float dtype) -> adjusted probabilities [..., V] in float32.

    Logits of -inf mean probability 0 (n-gram drafts use them); each row needs one finite logit.
    """
    logits = logits.astype(jnp.float32)
    vocab = logits.shape[-1]
    if config.temperature == 0:
        return jax.nn.one_hot(jnp.argmax(logits, axis=-1), vocab, dtype=jnp.float32)
    # Dividing raw logits by a tiny temperature overflows to inf (inf - inf = NaN in softmax), and
    # a float32 temperature below ~1e-38 may be flushed to 0. Shift first, so the largest logit is
    # exactly 0 and stays 0 under any scale, then multiply by 1/T clamped to float32's range.
    finfo = np.finfo(np.float32)
    scale = min(max(1.0 / config.temperature, float(finfo.tiny)), float(finfo.max))
    shifted = logits - jnp.max(logits, axis=-1, keepdims=True)  # <= 0, -inf stays -inf
    logits = jnp.where(shifted == 0, 0.0, shifted * scale)
    if 0 < config.top_k < vocab:
        kth = jax.lax.top_k(logits, config.top_k)[0][..., -1:]  # [..., 1]
        logits = jnp.where(logits >= kth, logits, -jnp.inf)
    probs = jax.nn.softmax(logits, axis=-1)
    if config.top_p < 1:
        probs = _top_p(probs, config.top_p)
    return probs


def _top_p(probs: jax.Array, top_p: float) -> jax.Array:
    """Keep the most likely tokens until their mass reaches top_p (at least one), renormalise."""
    sorted_probs = jnp.sort(probs, axis=-1)[..., ::-1]  # descending
    mass_before = jnp.cumsum(sorted_probs, axis=-1) - sorted_probs
    # The smallest kept probability: the last sorted entry whose preceding mass is < top_p.
    kept = mass_before < top_p
    threshold = jnp.min(jnp.where(kept, sorted_probs, jnp.inf), axis=-1, keepdims=True)
    probs = jnp.where(probs >= threshold, probs, 0.0)
    return probs / jnp.sum(probs, axis=-1, keepdims=True)


def sample_from(key: jax.Array, probs: jax.Array) -> jax.Array:
    """Draw one token from probs [V] (Gumbel-max); a zero-probability token is never drawn."""
    gumbel = jax.random.gumbel(key, probs.shape, dtype=jnp.float32)
    scores = jnp.where(probs > 0, jnp.log(probs) + gumbel, -jnp.inf)
    return jnp.argmax(scores, axis=-1).astype(jnp.int32)
