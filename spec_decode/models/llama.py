"""A decoder-only Llama-style transformer implementing the model contract.

Same semantics as Hugging Face's ``LlamaForCausalLM`` (RMSNorm, rotary "rotate half", grouped-query
attention, SwiGLU, pre-norm, optional tied embeddings), so SmolLM2-style checkpoints converted to
the tree below give the same logits. Layers are scanned, so every layer parameter has a leading
``layers`` axis and compile time does not grow with depth:

    {'embed': {'embedding': [V, D]},
     'layers': {'attention_norm': {'scale': [Lyr, D]},
                'attention': {'query': {'kernel': [Lyr, D, N, H]},
                              'key': {'kernel': [Lyr, D, Nkv, H]},
                              'value': {'kernel': [Lyr, D, Nkv, H]},
                              'out': {'kernel': [Lyr, N, H, D]}},
                'mlp_norm': {'scale': [Lyr, D]},
                'mlp': {'gate': {'kernel': [Lyr, D, F]}, 'up': {'kernel': [Lyr, D, F]},
                        'down': {'kernel': [Lyr, F, D]}}},
     'final_norm': {'scale': [D]},
     'lm_head': {'kernel': [D, V]}}   # only when tie_embeddings=False

The cache holds keys and values of every layer, [Lyr, B, L, Nkv, H] in the activation dtype, and
per-row ``lengths`` [B]. ``extend`` never writes the cache inside the layer loop: each layer reads
its slice and returns the K new keys and values, which are written once at each row's own end.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.sharding import PartitionSpec

from spec_decode.models import layers

_DTYPES = ("float32", "bfloat16")
_CACHE_KV_AXES = ("layers", "cache_batch", "cache_sequence", "cache_heads", "cache_kv")


def _dtype_name(field: str, value) -> str:
    try:
        name = jnp.dtype(value).name
    except TypeError:
        name = None
    if name not in _DTYPES:
        raise ValueError(f"{field}={value!r} is not allowed: it must be one of {_DTYPES}")
    return name


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
        object.__setattr__(self, "dtype", _dtype_name("dtype", self.dtype))
        object.__setattr__(self, "param_dtype", _dtype_name("param_dtype", self.param_dtype))


@struct.dataclass
class LlamaCache:
    """Keys and values of every layer; positions at or beyond a row's length are garbage.

    Attributes:
      k: [Lyr, B, L, Nkv, H] keys (after rotary), activation dtype.
      v: [Lyr, B, L, Nkv, H] values, activation dtype.
      lengths: [B] int32, valid positions per row.
    """

    k: jax.Array
    v: jax.Array
    lengths: jax.Array

    @property
    def max_length(self) -> int:
        """L, the number of positions each row can hold."""
        return self.k.shape[2]


class _Transformer(nn.Module):
    """Embedding, scanned decoder blocks, final norm and logits."""

    config: LlamaConfig
    # True: return the final-normed hidden states [B, K, D] instead of logits, for heads that
    # live outside the model (a draft scoring only a subset of the vocabulary).
    hidden_only: bool = False

    @nn.compact
    def __call__(
        self,
        tokens: jax.Array,
        positions: jax.Array,
        cache: tuple[jax.Array, jax.Array] | None,
        cache_mask: jax.Array | None,
    ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        """tokens, positions [B, K]; cache (k, v) [Lyr, B, L, Nkv, H], cache_mask [B, 1, L].

        Returns logits [B, K, V] float32 and the new keys and values [Lyr, B, K, Nkv, H].
        """
        cfg = self.config
        dtype, param_dtype = jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype)
        embed = nn.Embed(
            num_embeddings=cfg.vocab_size,
            features=cfg.emb_dim,
            embedding_init=layers.declared(layers.EMBEDDING_AXES),
            dtype=dtype,
            param_dtype=param_dtype,
            name="embed",
        )
        x = embed(tokens)  # [B, K, D]
        blocks = nn.scan(
            layers.DecoderBlock,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=(0, nn.broadcast, nn.broadcast),
            length=cfg.num_layers,
            metadata_params={nn.PARTITION_NAME: "layers"},
        )
        x, new_kv = blocks(cfg, name="layers")(x, cache, positions, cache_mask)
        x = layers.RMSNorm(cfg.norm_eps, dtype, param_dtype, name="final_norm")(x)
        if self.hidden_only:
            return x, new_kv
        if cfg.tie_embeddings:
            kernel = embed.embedding.T  # [D, V]
        else:
            kernel = layers.Kernel(
                (cfg.emb_dim, cfg.vocab_size),
                layers.declared(layers.LM_HEAD_AXES),
                param_dtype,
                name="lm_head",
            )()
        logits = jnp.einsum(
            "bkd,dv->bkv", x, kernel.astype(dtype), preferred_element_type=jnp.float32
        )
        return logits, new_kv


@dataclasses.dataclass(frozen=True)
class LlamaLM:
    """The model contract (``vocab_size``, ``init_cache``, ``extend``) for a Llama decoder.

    Hashable, so it can be a static argument of ``jax.jit``; parameters are a separate pytree.
    """

    config: LlamaConfig

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    @property
    def max_length(self) -> int:
        """The longest prompt + generation callers may ask for (checked by the decoders)."""
        return self.config.max_length

    def _module(self, hidden_only: bool = False) -> _Transformer:
        return _Transformer(self.config, hidden_only)

    def _boxed_init(self, key: jax.Array):
        tokens = jnp.zeros((1, 1), jnp.int32)
        return self._module().init(key, tokens, jnp.zeros_like(tokens), None, None)["params"]

    def init(self, key: jax.Array) -> dict:
        """Random parameters: a plain nested dict of arrays (tree in the module docstring).

        Normal with std 1/sqrt(fan_in) (embeddings 1/sqrt(D)), residual out-projections further
        scaled by 1/sqrt(2 * num_layers) as in GPT-2, norm scales 1: a random model's logits
        have std ~1 whatever its width, so its next-token distributions are varied.
        """
        shapes = nn.unbox(jax.eval_shape(self._boxed_init, key))
        return jax.jit(functools.partial(_random_params, self.config, shapes))(key)

    def logical_axes(self) -> dict:
        """A tree matching the params with a ``PartitionSpec`` of logical axis names per array."""
        boxed = jax.eval_shape(self._boxed_init, jax.random.key(0))
        return nn.get_partition_spec(boxed)

    def cache_logical_axes(self) -> LlamaCache:
        """A ``LlamaCache`` whose fields are ``PartitionSpec``s of logical cache axis names."""
        kv = PartitionSpec(*_CACHE_KV_AXES)
        return LlamaCache(k=kv, v=kv, lengths=PartitionSpec("cache_batch"))

    def init_cache(self, params: dict, batch_size: int, max_length: int) -> LlamaCache:
        """An empty cache (lengths 0) with room for ``max_length`` positions per row."""
        del params  # the cache shape depends only on the config
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r} is not allowed: it must be an int >= 1")
        # Not capped by config.max_length: decoders size caches a few positions past the
        # longest sequence (verification writes gamma + 1 ahead), and rotary has no table.
        if not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"max_length={max_length!r} is not allowed: it must be an int >= 1")
        cfg = self.config
        shape = (cfg.num_layers, batch_size, max_length, cfg.num_kv_heads, cfg.head_dim)
        return LlamaCache(
            k=jnp.zeros(shape, cfg.dtype),
            v=jnp.zeros(shape, cfg.dtype),
            lengths=jnp.zeros((batch_size,), jnp.int32),
        )

    def extend(
        self, params: dict, tokens: jax.Array, cache: LlamaCache
    ) -> tuple[jax.Array, LlamaCache]:
        """Process tokens [B, K] at each row's own end; return logits [B, K, V] and the cache.

        Token i of row b sits at position lengths[b] + i and attends to cached positions
        below lengths[b] and to new tokens 0..i. Works for any K >= 1: a draft step (K = 1),
        verification (K = gamma + 1) or a prefill (K = prompt length).
        """
        return self._extend(params, tokens, cache, hidden_only=False)

    def extend_hidden(
        self, params: dict, tokens: jax.Array, cache: LlamaCache
    ) -> tuple[jax.Array, LlamaCache]:
        """``extend`` without the output layer: final-normed hidden states [B, K, D]."""
        return self._extend(params, tokens, cache, hidden_only=True)

    def _extend(self, params, tokens, cache, hidden_only):
        batch, num_tokens = _check_tokens(tokens)
        if batch != cache.lengths.shape[0]:
            raise ValueError(
                f"tokens.shape={tokens.shape} is not allowed: its batch must equal the cache's "
                f"{cache.lengths.shape[0]}"
            )
        if num_tokens > cache.max_length:
            raise ValueError(
                f"tokens.shape={tokens.shape} is not allowed: K must be <= the cache length "
                f"{cache.max_length}"
            )
        lengths = cache.lengths
        positions = lengths[:, None] + jnp.arange(num_tokens, dtype=jnp.int32)  # [B, K]
        cache_mask = jnp.arange(cache.max_length) < lengths[:, None, None]  # [B, 1, L]
        logits, (k_new, v_new) = self._module(hidden_only).apply(
            {"params": params}, tokens, positions, (cache.k, cache.v), cache_mask
        )
        cache = cache.replace(
            k=_write_rows(cache.k, k_new, lengths),
            v=_write_rows(cache.v, v_new, lengths),
            lengths=lengths + num_tokens,
        )
        return logits, cache

    def forward(self, params: dict, tokens: jax.Array, hidden_only: bool = False) -> jax.Array:
        """Uncached causal forward pass: tokens [B, T] at positions 0..T-1 -> logits [B, T, V]
        (or the final-normed hidden states [B, T, D] with ``hidden_only``)."""
        batch, length = _check_tokens(tokens)
        positions = jnp.broadcast_to(jnp.arange(length, dtype=jnp.int32), (batch, length))
        module = self._module(hidden_only)
        logits, _ = module.apply({"params": params}, tokens, positions, None, None)
        return logits


def _init_std(cfg: LlamaConfig, path: str) -> float | None:
    """The std of a parameter's normal init, or None for norm scales (which start at 1)."""
    if path.endswith("/scale"):
        return None
    depth = 1.0 / math.sqrt(2 * cfg.num_layers)
    return {
        "embed/embedding": 1.0 / math.sqrt(cfg.emb_dim),
        "lm_head/kernel": 1.0 / math.sqrt(cfg.emb_dim),
        "layers/attention/query/kernel": 1.0 / math.sqrt(cfg.emb_dim),
        "layers/attention/key/kernel": 1.0 / math.sqrt(cfg.emb_dim),
        "layers/attention/value/kernel": 1.0 / math.sqrt(cfg.emb_dim),
        "layers/attention/out/kernel": depth / math.sqrt(cfg.num_heads * cfg.head_dim),
        "layers/mlp/gate/kernel": 1.0 / math.sqrt(cfg.emb_dim),
        "layers/mlp/up/kernel": 1.0 / math.sqrt(cfg.emb_dim),
        "layers/mlp/down/kernel": depth / math.sqrt(cfg.mlp_dim),
    }[path]


def _random_params(cfg: LlamaConfig, shapes: dict, key: jax.Array) -> dict:
    """Fill the tree of shapes from one normal draw.

    One draw for the whole tree, not one per parameter: each draw is a separate random-bits
    kernel, and on CPU compiling a dozen of them takes seconds.
    """
    leaves, treedef = jax.tree_util.tree_flatten_with_path(shapes)
    sizes = [math.prod(leaf.shape) for _, leaf in leaves]
    unit = jnp.split(jax.random.normal(key, (sum(sizes),), jnp.float32), np.cumsum(sizes)[:-1])
    params = []
    for (path, leaf), draw in zip(leaves, unit, strict=True):
        std = _init_std(cfg, "/".join(entry.key for entry in path))
        value = jnp.ones(leaf.shape) if std is None else std * draw.reshape(leaf.shape)
        params.append(value.astype(leaf.dtype))
    return jax.tree_util.tree_unflatten(treedef, params)


def _check_tokens(tokens: jax.Array) -> tuple[int, int]:
    if tokens.ndim != 2 or tokens.shape[1] < 1:
        raise ValueError(f"tokens.shape={tokens.shape} is not allowed: it must be [B, K], K >= 1")
    if not jnp.issubdtype(tokens.dtype, jnp.integer):
        raise ValueError(f"tokens.dtype={tokens.dtype} is not allowed: it must be an integer type")
    return tokens.shape


def _write_rows(cache: jax.Array, new: jax.Array, lengths: jax.Array) -> jax.Array:
    """Write new [Lyr, B, K, Nkv, H] into cache [Lyr, B, L, Nkv, H] at each row's lengths[b]."""

    def write_row(row_cache, row_new, start):  # [Lyr, L, Nkv, H], [Lyr, K, Nkv, H], []
        return jax.lax.dynamic_update_slice(
            row_cache, row_new.astype(row_cache.dtype), (0, start, 0, 0)
        )

    return jax.vmap(write_row, in_axes=(1, 1, 0), out_axes=1)(cache, new, lengths)


def tiny_llama(
    num_layers: int, seed: int, *, vocab_size: int = 64, emb_dim: int = 32,
    head_dim: int | None = None, max_length: int = 64,
) -> tuple[LlamaLM, dict]:  # fmt: skip
    """A small random Llama (4 heads, 2 KV heads, MLP 2 x emb_dim) and its params: the model
    that scripts' ``--smoke`` runs use on a CPU."""
    config = LlamaConfig(
        vocab_size=vocab_size, num_layers=num_layers, emb_dim=emb_dim, num_heads=4,
        num_kv_heads=2, head_dim=head_dim or emb_dim // 4, mlp_dim=2 * emb_dim,
        max_length=max_length,
    )  # fmt: skip
    model = LlamaLM(config)
    return model, model.init(jax.random.key(seed))
