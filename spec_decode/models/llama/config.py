"""The static dimensions of a Llama decoder (hashable, so models can be static jit arguments)."""

from __future__ import annotations

import dataclasses

import jax

from spec_decode.models.dtypes import dtype_name
from spec_decode.models.llama.attention import ATTENTION_IMPLEMENTATIONS


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
      fused_projections: the parameter layout: False is the canonical tree (separate query, key,
        value, gate, up: what checkpoints, GGUF and transformers use), True the fused one
        (``qkv``, ``gate_up``) that ``LlamaLM.fuse_params`` makes; fewer, larger matmuls.
      layer_unroll: layers per trip of the scan over layers (``nn.scan(unroll=...)``); any value
        >= num_layers unrolls them all (no loop, one kernel sequence). The parameter layout is
        the same either way. None: the backend's choice (``fast_path``).
      attention: 'einsum' (two blocks under one softmax, the cache never copied), 'xla' or
        'cudnn' (``jax.nn.dot_product_attention``, XLA choosing or cuDNN's fused kernel),
        'pallas' (rotary and attention in one Triton kernel, ``pallas_attention.py``; extends of
        at most 16 tokens, longer ones and uncached passes take 'xla'; off GPUs it runs
        interpreted, for tests). None:
        the backend's choice (``fast_path``).

    Launch-bound GPUs (a small model at batch 1: ~2 us per kernel, hundreds per step) want the
    layers unrolled and as few kernels as possible; a CPU compiles an unrolled 30-layer model
    several times slower and gains little, so the defaults are chosen per backend at trace time.
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
    fused_projections: bool = False
    layer_unroll: int | None = None
    attention: str | None = None

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
        if not isinstance(self.fused_projections, bool):
            raise ValueError(
                f"fused_projections={self.fused_projections!r} is not allowed: it must be True "
                "or False"
            )
        unroll = self.layer_unroll
        if unroll is not None and (
            not isinstance(unroll, int) or isinstance(unroll, bool) or unroll < 1
        ):
            raise ValueError(
                f"layer_unroll={unroll!r} is not allowed: it must be None or an integer >= 1"
            )
        if self.attention is not None and self.attention not in ATTENTION_IMPLEMENTATIONS:
            raise ValueError(
                f"attention={self.attention!r} is not allowed: it must be None or one of "
                f"{ATTENTION_IMPLEMENTATIONS}"
            )
        # Frozen dataclass: normalise dtypes to their names so the config stays hashable.
        object.__setattr__(self, "dtype", dtype_name("dtype", self.dtype))
        object.__setattr__(self, "param_dtype", dtype_name("param_dtype", self.param_dtype))


def fast_path(config: LlamaConfig, backend: str | None = None) -> tuple[int, str]:
    """(layers per scan trip, attention implementation) that ``config`` runs with on
    ``backend`` (default: JAX's): its own fields where set, else the backend's defaults.

    GPUs unroll every layer and let XLA pick the attention kernel (``jax.nn.
    dot_product_attention``): their step time is set by how many kernels are launched. CPUs and
    TPUs keep the scan (compile time flat in depth) and the einsum attention that reads the
    cache in place.
    """
    gpu = (backend or jax.default_backend()) in ("gpu", "cuda", "rocm")
    unroll = config.layer_unroll or (config.num_layers if gpu else 1)
    attention = config.attention or ("xla" if gpu else "einsum")
    return min(unroll, config.num_layers), attention
