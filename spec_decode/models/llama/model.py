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

With ``config.fused_projections`` the tree holds ``attention/qkv/kernel`` [Lyr, D, N + 2 Nkv, H]
(query heads, then key heads, then value heads) instead of ``query``, ``key`` and ``value``, and
``mlp/gate_up/kernel`` [Lyr, D, 2, F] instead of ``gate`` and ``up``. Checkpoints, GGUF files and
transformers exports stay canonical; ``fuse_params`` makes the fused tree once, at load, and
``unfuse_params`` goes back. ``fast_path`` (config.py) says which layer loop and attention
kernel a backend runs with.

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

from spec_decode.core.contract import check_tokens, write_at_lengths
from spec_decode.models.llama import cache as cache_lib
from spec_decode.models.llama.cache import LlamaCache
from spec_decode.models.llama.config import LlamaConfig, fast_path
from spec_decode.models.llama.network import Transformer


@dataclasses.dataclass(frozen=True)
class LlamaLM:
    """The model contract (``vocab_size``, ``init_cache``, ``extend``...) for a Llama decoder.

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

    @property
    def fused(self) -> LlamaLM:
        """This model with the fused parameter layout (``fuse_params`` makes its params)."""
        return LlamaLM(dataclasses.replace(self.config, fused_projections=True))

    def fuse_params(self, params: dict) -> dict:
        """The canonical tree -> the fused one, for ``self.fused`` (no copy of other arrays).

        The query, key and value kernels [Lyr, D, heads, H] are joined on their heads axis and
        gate and up [Lyr, D, F] stacked on a new axis before F, so that one matmul computes
        what three and two did: the same products, in the same dtype.
        """
        layer = dict(params["layers"])
        attention, mlp = dict(layer["attention"]), dict(layer["mlp"])
        parts = [attention.pop(name)["kernel"] for name in ("query", "key", "value")]
        attention["qkv"] = {"kernel": jnp.concatenate(parts, axis=2)}
        gate, up = mlp.pop("gate")["kernel"], mlp.pop("up")["kernel"]
        mlp["gate_up"] = {"kernel": jnp.stack([gate, up], axis=2)}
        layer["attention"], layer["mlp"] = attention, mlp
        return {**params, "layers": layer}

    def unfuse_params(self, params: dict) -> dict:
        """The inverse of ``fuse_params``: the canonical tree that checkpoints and exports use."""
        cfg = self.config
        layer = dict(params["layers"])
        attention, mlp = dict(layer["attention"]), dict(layer["mlp"])
        qkv = attention.pop("qkv")["kernel"]
        ends = np.cumsum([cfg.num_heads, cfg.num_kv_heads])
        for name, part in zip(("query", "key", "value"), jnp.split(qkv, ends, axis=2), strict=True):
            attention[name] = {"kernel": part}
        gate_up = mlp.pop("gate_up")["kernel"]
        mlp["gate"], mlp["up"] = {"kernel": gate_up[:, :, 0]}, {"kernel": gate_up[:, :, 1]}
        layer["attention"], layer["mlp"] = attention, mlp
        return {**params, "layers": layer}

    def _module(self, head: bool = True, blocked: bool = False) -> Transformer:
        return Transformer(self.config, head, blocked)

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
        return cache_lib.cache_logical_axes()

    def init_cache(self, params: dict, batch_size: int, max_length: int) -> LlamaCache:
        """An empty cache (lengths 0) with room for ``max_length`` positions per row."""
        del params  # the cache shape depends only on the config
        return cache_lib.empty_cache(self.config, batch_size, max_length)

    def extend(
        self, params: dict, tokens: jax.Array, cache: LlamaCache
    ) -> tuple[jax.Array, LlamaCache]:
        """Process tokens [B, K] at each row's own end; return logits [B, K, V] and the cache.

        Token i of row b sits at position lengths[b] + i and attends to cached positions
        below lengths[b] and to new tokens 0..i. Works for any K >= 1: a draft step (K = 1),
        verification (K = gamma + 1) or a prefill (K = prompt length).
        """
        return self._extend(params, tokens, cache, head=True)

    def extend_hidden(
        self, params: dict, tokens: jax.Array, cache: LlamaCache
    ) -> tuple[jax.Array, LlamaCache]:
        """``extend`` without the output layer: final-normed hidden states [B, K, D]."""
        return self._extend(params, tokens, cache, head=False)

    @property
    def feature_dim(self) -> int:
        """D: the width of the hidden states that drafts reading features get (contract)."""
        return self.config.emb_dim

    def extend_features(
        self, params: dict, tokens: jax.Array, cache: LlamaCache
    ) -> tuple[jax.Array, jax.Array, LlamaCache]:
        """``extend`` that also returns the final-normed hidden states [B, K, D] (the features
        that ``contract.FeatureDraft`` drafts read; the logits are these times the head)."""
        hidden, cache = self._extend(params, tokens, cache, head=False)
        return self.logits(params, hidden), hidden, cache

    def prefill_features(
        self, params: dict, tokens: jax.Array, cache: LlamaCache
    ) -> tuple[jax.Array, LlamaCache]:
        """``prefill`` that returns the final-normed hidden states [B, K, D]."""
        blocked = fast_path(self.config)[1] == "einsum"
        return self._extend(params, tokens, cache, head=False, blocked=blocked)

    def logits(self, params: dict, hidden: jax.Array) -> jax.Array:
        """The output layer alone: final-normed hidden states [..., D] -> logits [..., V] float32
        (the tied embedding, or ``lm_head``), as ``extend`` computes them."""
        cfg = self.config
        if cfg.tie_embeddings:
            kernel = params["embed"]["embedding"].T  # [D, V]
        else:
            kernel = params["lm_head"]["kernel"]
        return jnp.einsum(
            "...d,dv->...v", hidden, kernel.astype(cfg.dtype), preferred_element_type=jnp.float32
        )

    def prefill(self, params: dict, tokens: jax.Array, cache: LlamaCache) -> LlamaCache:
        """``extend`` for a prompt chunk without the output layer; the cache only.

        With the einsum attention (CPUs, TPUs) the cache is read in blocks of K positions below
        the rows' lengths, not whole (``attend_blocked``). A fused attention kernel ('xla',
        'cudnn': GPUs) reads it whole as ``extend`` does: on an H200 the blocked loop made a
        512-token prompt 2x slower than one ``extend`` with logits (BENCHMARKS.md).
        """
        blocked = fast_path(self.config)[1] == "einsum"
        _, cache = self._extend(params, tokens, cache, head=False, blocked=blocked)
        return cache

    def _extend(self, params, tokens, cache, head, blocked=False):
        _, num_tokens = check_tokens(tokens, cache.lengths.shape[0], cache.max_length)
        lengths = cache.lengths
        positions = lengths[:, None] + jnp.arange(num_tokens, dtype=jnp.int32)  # [B, K]
        cache_mask = jnp.arange(cache.max_length) < lengths[:, None, None]  # [B, 1, L]
        outputs, (k_new, v_new) = self._module(head, blocked).apply(
            {"params": params}, tokens, positions, (cache.k, cache.v), cache_mask
        )
        cache = cache.replace(
            k=write_at_lengths(cache.k, k_new, lengths),
            v=write_at_lengths(cache.v, v_new, lengths),
            lengths=lengths + num_tokens,
        )
        return outputs, cache

    def forward(self, params: dict, tokens: jax.Array) -> jax.Array:
        """Uncached causal forward pass: tokens [B, T] at positions 0..T-1 -> logits [B, T, V]."""
        return self._forward(params, tokens, head=True)

    def forward_hidden(self, params: dict, tokens: jax.Array) -> jax.Array:
        """``forward`` without the output layer: final-normed hidden states [B, T, D]."""
        return self._forward(params, tokens, head=False)

    def _forward(self, params, tokens, head):
        batch, length = check_tokens(tokens)
        positions = jnp.broadcast_to(jnp.arange(length, dtype=jnp.int32), (batch, length))
        outputs, _ = self._module(head).apply({"params": params}, tokens, positions, None, None)
        return outputs


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
        "layers/attention/qkv/kernel": 1.0 / math.sqrt(cfg.emb_dim),
        "layers/mlp/gate_up/kernel": 1.0 / math.sqrt(cfg.emb_dim),
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
