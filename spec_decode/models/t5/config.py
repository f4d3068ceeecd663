"""T5's hyperparameters, with the field names, order and defaults of T5X's ``T5Config``.

T5 1.1 uses a gated-GELU MLP (``mlp_activations=('gelu', 'linear')``) and a separate
``logits_dense``; T5 1.0 uses a ReLU MLP (``('relu',)``) and computes logits through the token
embedding (``logits_via_embedding=True``). Shapes: V vocab_size, D emb_dim, N num_heads,
H head_dim, F mlp_dim.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from spec_decode.models.dtypes import dtype_name

ATTENTION_IMPLEMENTATIONS = ("einsum", "xla", "cudnn")

_INT_FIELDS = (
    "vocab_size",
    "emb_dim",
    "num_heads",
    "num_encoder_layers",
    "num_decoder_layers",
    "head_dim",
    "mlp_dim",
)

# T5X hard-codes these in its Encoder and Decoder; they are part of every T5 checkpoint's meaning.
RELPOS_NUM_BUCKETS = 32
RELPOS_MAX_DISTANCE = 128


@dataclasses.dataclass(frozen=True)
class T5Config:
    """Static (hashable) T5 dimensions and options; a change recompiles.

    Attributes:
      vocab_size: V, shared by the encoder and the decoder.
      dtype: activation dtype, 'float32' or 'bfloat16' (jnp dtypes accepted). Parameters are
        always float32, as in T5X.
      emb_dim: D, the residual stream width.
      num_heads: N attention heads.
      num_encoder_layers: encoder blocks.
      num_decoder_layers: decoder blocks.
      head_dim: H, per-head width; N * H need not equal D.
      mlp_dim: F, the MLP's hidden width.
      mlp_activations: one name per input projection of the MLP, multiplied together: 'linear'
        or a function of ``flax.linen`` ('relu', 'gelu', ...). One name gives a ``wi`` kernel,
        several give ``wi_0``, ``wi_1``, ...
      dropout_rate: used only when a call asks for dropout.
      logits_via_embedding: logits = embedding-transposed projection / sqrt(D) (T5 1.0), else a
        separate ``decoder/logits_dense`` kernel (T5 1.1).
      float32_attention_logits: compute q.k in float32 whatever ``dtype``.
      attention: not a T5X field (so a T5X config converts to the default): the kernel of the
        attention softmax(q.k + bias) v when no dropout is asked for. 'einsum' (two einsums and
        a softmax, as T5X), 'xla' or 'cudnn' (``jax.nn.dot_product_attention`` with the
        relative-position bias and mask as one bias, float32 logits); None: 'xla' on GPUs,
        where a decoder step is bound by its kernel launches, 'einsum' elsewhere.
      fused_projections: not a T5X field either: the parameter layout. False is T5X's tree
        (what checkpoints hold); True the fused one that ``T5Decoding.fuse_params`` makes:
        self-attention ``qkv``, encoder-decoder ``kv`` and gated-MLP ``wi_fused`` kernels, one
        matmul each where T5X's tree has three, two and two.
    """

    vocab_size: int
    dtype: Any = "float32"
    emb_dim: int = 512
    num_heads: int = 8
    num_encoder_layers: int = 6
    num_decoder_layers: int = 6
    head_dim: int = 64
    mlp_dim: int = 2048
    mlp_activations: tuple[str, ...] = ("relu",)
    dropout_rate: float = 0.1
    logits_via_embedding: bool = False
    float32_attention_logits: bool = False
    attention: str | None = None
    fused_projections: bool = False

    def __post_init__(self):
        for field in _INT_FIELDS:
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{field}={value!r} is not allowed: it must be an integer >= 1")
        rate = self.dropout_rate
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 <= rate < 1:
            raise ValueError(f"dropout_rate={rate!r} is not allowed: it must be in [0, 1)")
        for field in ("logits_via_embedding", "float32_attention_logits", "fused_projections"):
            if not isinstance(getattr(self, field), bool):
                raise ValueError(
                    f"{field}={getattr(self, field)!r} is not allowed: it must be True or False"
                )
        if self.attention not in (None, *ATTENTION_IMPLEMENTATIONS):
            raise ValueError(
                f"attention={self.attention!r} is not allowed: it must be None or one of "
                f"{ATTENTION_IMPLEMENTATIONS}"
            )
        # Frozen dataclass: normalise to hashable values (gin and JSON hand over lists and
        # jnp dtypes).
        object.__setattr__(self, "mlp_activations", _activations(self.mlp_activations))
        object.__setattr__(self, "dtype", dtype_name("dtype", self.dtype))

    @property
    def attention_implementation(self) -> str:
        """``attention`` with None resolved for JAX's default backend (at trace time)."""
        if self.attention is not None:
            return self.attention
        return "xla" if jax.default_backend() in ("gpu", "cuda", "rocm") else "einsum"

    @property
    def activation_dtype(self) -> jnp.dtype:
        """``dtype`` as a jnp dtype."""
        return jnp.dtype(self.dtype)


def _activations(value: Any) -> tuple[str, ...]:
    allowed = "a non-empty sequence of 'linear' or flax.linen activation names"
    if isinstance(value, str) or not isinstance(value, (tuple, list)) or not value:
        raise ValueError(f"mlp_activations={value!r} is not allowed: it must be {allowed}")
    for name in value:
        if not isinstance(name, str) or not (name == "linear" or callable(getattr(nn, name, 0))):
            raise ValueError(
                f"mlp_activations={value!r} is not allowed: {name!r} is not 'linear' or a "
                "function of flax.linen"
            )
    return tuple(value)


def activation_fn(name: str):
    """The function an ``mlp_activations`` entry names ('linear' is the identity)."""
    if name == "linear":
        return lambda x: x
    return getattr(nn, name)
