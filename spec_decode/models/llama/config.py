"""The static dimensions of a Llama decoder (hashable, so models can be static jit arguments)."""

from __future__ import annotations

import dataclasses

from spec_decode.models.dtypes import dtype_name


@dataclasses.dataclass(frozen=True)
class LlamaConfig:
    """Static (hashable) model dimensions. Shapes: V vocab, D emb_dim, N heads, H head_dim.

    Attributes:
      vocab_size: V.
      num_layers: number of decoder blocks (scanned).
      emb_dim: D, the residual stream width.
      num_heads: N query heads.
      num_kv_heads: key/value heads; must divide num_heads (grouped-query attention).
      head_dim: H, even (rotary rotates pairs of halves).
      mlp_dim: F, the SwiGLU hidden width.
      rope_theta: rotary base.
      norm_eps: RMSNorm epsilon.
      tie_embeddings: logits = x @ embedding.T instead of a separate lm_head.
      dtype: activation (and cache) dtype name, 'float32' or 'bfloat16'; norms, softmax and logits
        are float32 either way. A numpy/jax dtype is accepted and stored as its name.
      param_dtype: dtype name of freshly initialised parameters.
      max_length: the longest sequence (prompt + generated) callers may use.
    """

    vocab_size: int
    num_layers: int
    emb_dim: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    mlp_dim: int
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = True
    dtype: str = "float32"
    param_dtype: str = "float32"
    max_length: int = 2048

    def __post_init__(self):
        for field in (
            "vocab_size",
            "num_layers",
            "emb_dim",
            "num_heads",
            "num_kv_heads",
            "head_dim",
            "mlp_dim",
            "max_length",
        ):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{field}={value!r} is not allowed: it must be an integer >= 1")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_kv_heads={self.num_kv_heads!r} is not allowed: it must divide "
                f"num_heads={self.num_heads}"
            )
        if self.head_dim % 2:
            raise ValueError(
                f"head_dim={self.head_dim!r} is not allowed: it must be even (rotary embeddings)"
            )
        for field in ("rope_theta", "norm_eps"):
            value = getattr(self, field)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"{field}={value!r} is not allowed: it must be a number > 0")
        if not isinstance(self.tie_embeddings, bool):
            raise ValueError(
                f"tie_embeddings={self.tie_embeddings!r} is not allowed: it must be True or False"
            )
        # Frozen dataclass: normalise dtypes to their names so the config stays hashable.
        object.__setattr__(self, "dtype", dtype_name("dtype", self.dtype))
        object.__setattr__(self, "param_dtype", dtype_name("param_dtype", self.param_dtype))
