"""T5's building blocks with T5X's parameter names, shapes, logical axes and initialisers.

Every parameter is float32 and declared with ``flax.linen.partitioning.param_with_axes``, so
``init`` returns a ``params`` tree that a T5X checkpoint fills by name and a ``params_axes``
tree with the logical axis names T5X's partitioner reads ('vocab', 'embed', 'joined_kv', 'mlp',
'heads', 'relpos_buckets').

Kernels are stored flat, [inputs, outputs], as in T5X: the query kernel is [D, N*H] and the
attention output kernel [N*H, D], whatever the shapes the computation reshapes them to.
``StackedDense`` is the fused layout's exception: P projections of one input stacked as a
[inputs, P, outputs] kernel, one matmul where T5X's tree has P.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.linen import partitioning

from spec_decode.models.t5.config import activation_fn

Initializer = Callable[..., jax.Array]

# T5X's initialisers (the scales the public checkpoints were trained from).
FAN_IN_TRUNCATED = nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")
EMBEDDING_INIT = nn.initializers.normal(stddev=1.0)
RELPOS_INIT = nn.initializers.variance_scaling(1.0, "fan_avg", "uniform")


class DenseGeneral(nn.Module):
    """x [..., *in] -> [..., *features], contracting the trailing ``num_input_axes`` axes.

    No bias. The kernel is one flat [prod(in), prod(features)] parameter named ``kernel``.
    """

    features: int | tuple[int, ...]
    num_input_axes: int = 1
    dtype: Any = jnp.float32
    kernel_init: Initializer = FAN_IN_TRUNCATED
    kernel_axes: tuple[str, ...] = ()

    @nn.compact
    def __call__(self, inputs: jax.Array) -> jax.Array:
        features = self.features if isinstance(self.features, tuple) else (self.features,)
        batch_shape = inputs.shape[: inputs.ndim - self.num_input_axes]
        in_size = math.prod(inputs.shape[inputs.ndim - self.num_input_axes :])
        kernel = partitioning.param_with_axes(
            "kernel",
            self.kernel_init,
            (in_size, math.prod(features)),
            jnp.float32,
            axes=self.kernel_axes,
        )
        x = jnp.reshape(inputs.astype(self.dtype), (*batch_shape, in_size))
        y = jnp.dot(x, kernel.astype(self.dtype))
        return jnp.reshape(y, (*batch_shape, *features))


def stacked_init(inits: Sequence[Initializer]) -> Initializer:
    """An initialiser of a [in, P, out] kernel whose part p is drawn as ``inits[p]`` draws an
    [in, out] kernel (the same fan-in scales as the separate kernels)."""

    def init(key, shape, dtype=jnp.float32):
        in_size, parts, out_size = shape
        if parts != len(inits):
            raise ValueError(f"shape={shape} is not allowed: it must have {len(inits)} parts")
        keys = jax.random.split(key, parts)
        return jnp.stack(
            [fn(k, (in_size, out_size), dtype) for fn, k in zip(inits, keys, strict=True)], axis=1
        )

    return init


class StackedDense(nn.Module):
    """P projections of the same input as one matmul: x [..., in] -> [..., P, *features].

    The kernel is [in, P, prod(features)]: part p is what a ``DenseGeneral`` of ``features``
    would hold, so splitting it on axis 1 gives back the separate kernels exactly. No bias.
    """

    features: int | tuple[int, ...]
    kernel_inits: tuple[Initializer, ...]
    dtype: Any = jnp.float32
    kernel_axes: tuple[str | None, ...] = ()

    @nn.compact
    def __call__(self, inputs: jax.Array) -> jax.Array:
        features = self.features if isinstance(self.features, tuple) else (self.features,)
        parts, in_size = len(self.kernel_inits), inputs.shape[-1]
        kernel = partitioning.param_with_axes(
            "kernel",
            stacked_init(self.kernel_inits),
            (in_size, parts, math.prod(features)),
            jnp.float32,
            axes=self.kernel_axes,
        )
        flat = jnp.reshape(kernel.astype(self.dtype), (in_size, -1))  # [in, P * out]
        y = jnp.dot(inputs.astype(self.dtype), flat)
        return jnp.reshape(y, (*inputs.shape[:-1], parts, *features))


class LayerNorm(nn.Module):
    """T5's RMS norm: x * rsqrt(mean(x^2) + eps) * scale, no mean subtraction, no bias.

    The statistics are float32 whatever the activation dtype.
    """

    epsilon: float = 1e-6
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.astype(jnp.float32)
        mean_square = jnp.mean(jnp.square(x), axis=-1, keepdims=True)
        y = (x * jax.lax.rsqrt(mean_square + self.epsilon)).astype(self.dtype)
        scale = partitioning.param_with_axes(
            "scale", nn.initializers.ones, (x.shape[-1],), jnp.float32, axes=("embed",)
        )
        return y * scale.astype(self.dtype)


class Embed(nn.Module):
    """The shared token embedding [V, D]; ``attend`` is its transpose (T5 1.0 logits)."""

    num_embeddings: int
    features: int
    dtype: Any = jnp.float32

    def setup(self):
        self.embedding = partitioning.param_with_axes(
            "embedding",
            EMBEDDING_INIT,
            (self.num_embeddings, self.features),
            jnp.float32,
            axes=("vocab", "embed"),
        )

    def __call__(self, tokens: jax.Array) -> jax.Array:
        """tokens [...] int -> [..., D] in ``dtype``."""
        if not jnp.issubdtype(tokens.dtype, jnp.integer):
            raise ValueError(f"tokens.dtype={tokens.dtype} is not allowed: it must be integer")
        return jnp.take(self.embedding, tokens, axis=0).astype(self.dtype)

    def attend(self, query: jax.Array) -> jax.Array:
        """query [..., D] -> [..., V] in float32, for logit stability."""
        return jnp.dot(query, self.embedding.astype(jnp.float32).T)


# The stacked axis of a fused kernel holds different projections: never split across devices
# (the 'mlp' or 'joined_kv' axis after it still is, each device holding the same slice of
# every part).
FUSED_MLP_AXES = ("embed", None, "mlp")


class MlpBlock(nn.Module):
    """prod_i act_i(x @ wi_i) @ wo, with dropout on the hidden layer (broadcast over length).

    ``fused`` (with several activations): the ``wi_i`` as one ``wi_fused`` [D, P, F] kernel.
    """

    intermediate_dim: int
    activations: Sequence[str] = ("relu",)
    intermediate_dropout_rate: float = 0.1
    dtype: Any = jnp.float32
    fused: bool = False

    @nn.compact
    def __call__(self, inputs: jax.Array, deterministic: bool = True) -> jax.Array:
        parts = len(self.activations)
        if self.fused and parts > 1:
            projected = StackedDense(
                self.intermediate_dim,
                (FAN_IN_TRUNCATED,) * parts,
                dtype=self.dtype,
                kernel_axes=FUSED_MLP_AXES,
                name="wi_fused",
            )(inputs)  # [..., P, F]
            projections = [projected[..., index, :] for index in range(parts)]
        else:
            projections = [
                DenseGeneral(
                    self.intermediate_dim,
                    dtype=self.dtype,
                    kernel_axes=("embed", "mlp"),
                    name="wi" if parts == 1 else f"wi_{index}",
                )(inputs)
                for index in range(parts)
            ]
        hidden = [
            activation_fn(name)(x) for name, x in zip(self.activations, projections, strict=True)
        ]
        x = functools.reduce(operator.mul, hidden)  # [..., F]
        x = nn.Dropout(rate=self.intermediate_dropout_rate, broadcast_dims=(-2,))(
            x, deterministic=deterministic
        )
        return DenseGeneral(
            inputs.shape[-1], dtype=self.dtype, kernel_axes=("mlp", "embed"), name="wo"
        )(x)


class RelativePositionBiases(nn.Module):
    """T5's learned per-head bias of the attention logits, a function of (key - query) position.

    ``rel_embedding`` is [N, num_buckets]. Positions are explicit arrays, so the same module
    serves a full forward pass (positions 0..T-1) and cached decoding (query positions
    lengths[b] + i against every cache slot).
    """

    num_buckets: int
    max_distance: int
    num_heads: int
    dtype: Any = jnp.float32

    def setup(self):
        self.rel_embedding = partitioning.param_with_axes(
            "rel_embedding",
            RELPOS_INIT,
            (self.num_heads, self.num_buckets),
            jnp.float32,
            axes=("heads", "relpos_buckets"),
        )

    def __call__(
        self, query_positions: jax.Array, key_positions: jax.Array, bidirectional: bool
    ) -> jax.Array:
        """query_positions [..., Q], key_positions [..., Kk] -> bias [..., N, Q, Kk]."""
        relative = key_positions[..., None, :] - query_positions[..., :, None]  # [..., Q, Kk]
        buckets = relative_position_bucket(
            relative, bidirectional, self.num_buckets, self.max_distance
        )
        bias = jnp.take(self.rel_embedding.astype(self.dtype), buckets, axis=1)  # [N, ..., Q, Kk]
        return jnp.moveaxis(bias, 0, -3)


def relative_position_bucket(
    relative_position: jax.Array, bidirectional: bool, num_buckets: int, max_distance: int
) -> jax.Array:
    """Bucket of each (key - query) distance, int32 in [0, num_buckets).

    Distances below half the buckets (of one direction) each get their own bucket; larger ones
    share logarithmically wider buckets up to ``max_distance``, beyond which all share the last.
    Unidirectional (decoder) attention maps every key after the query to bucket 0; bidirectional
    (encoder) attention gives keys after the query the upper half of the buckets.
    """
    buckets_per_side = num_buckets // 2 if bidirectional else num_buckets
    distance = -relative_position  # how far back the key is
    if bidirectional:
        offset = jnp.where(distance < 0, buckets_per_side, 0)
        distance = jnp.abs(distance)
    else:
        offset = 0
        distance = jnp.maximum(distance, 0)
    table = jnp.asarray(_distance_buckets(buckets_per_side, max_distance))
    return (offset + table[jnp.minimum(distance, max_distance)]).astype(jnp.int32)


@functools.cache
def _distance_buckets(num_buckets: int, max_distance: int) -> np.ndarray:
    """Bucket of each distance 0..max_distance (larger distances share the last entry).

    A NumPy table rather than traced arithmetic: T5X evaluates the log spacing in NumPy
    (float32 logs divided by a float64 constant), and truncation at bucket boundaries must
    agree exactly with the checkpoints' training code, whatever positions are traced.
    """
    distance = np.arange(max_distance + 1)
    max_exact = num_buckets // 2
    log_ratio = np.log(distance.astype(np.float32) / max_exact + np.finfo(np.float32).eps)
    large = max_exact + (
        log_ratio / np.log(max_distance / max_exact) * (num_buckets - max_exact)
    ).astype(np.int32)
    large = np.minimum(large, num_buckets - 1)
    return np.where(distance < max_exact, distance, large).astype(np.int32)
