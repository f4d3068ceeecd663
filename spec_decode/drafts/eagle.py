"""A draft that reads the target's features (EAGLE, Li et al. 2024): one or two decoder blocks
over the embedding of each token joined with the target's hidden state one position back.

    position p      [embed(x_p), h_{p-1}]            [B, K, 2D]  (h_{-1} = 0)
    fc              -> [B, K, D]
    blocks          Llama decoder blocks with their own KV cache, rotary at absolute positions
    final norm      -> the predicted h_p [B, K, D]: what position p + 1 reads while drafting
    head            -> logits [B, K, V]: the target's own output layer (tied table or lm_head)

h is the target's final-normed hidden state (``LlamaLM.extend_features``), so a prediction is
scored exactly as the target scores its own: q = softmax(head(predicted h_p)). In the decoder
(``contract.FeatureDraft``, ``core/features.py``) a position the target has verified is read with
the target's true h, and the draft's predictions stand in only beyond the last verified one.
Speculative sampling stays exact whatever q is.

params = {"embed": {"embedding": [V, D]},   the target's table (frozen)
          "lm_head": {"kernel": [D, V]},    the target's head, only when it is untied (frozen)
          "fc": {"kernel": [2D, D]},
          "layers": {...},                  Llama blocks, every leaf [Lyr, ...] (models/llama)
          "final_norm": {"scale": [D]}}

Own weights (fc, blocks, norm) for SmolLM2's D = 576 with one block: 4.2M parameters, 8.4 MB in
bfloat16 (``own_parameter_count``).
"""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from spec_decode.core.contract import check_tokens, write_at_lengths
from spec_decode.models.llama import LlamaCache, LlamaConfig, LlamaLM, layers
from spec_decode.models.llama import cache as cache_lib
from spec_decode.models.llama.attention import PALLAS
from spec_decode.models.llama.config import fast_path
from spec_decode.models.llama.network import scanned_blocks

FROZEN = ("embed", "lm_head")  # the target's tables: shared, never trained


class FeatureBlocks(nn.Module):
    """fc over [embedding, feature], scanned decoder blocks, final norm: predicted features."""

    config: LlamaConfig

    @nn.compact
    def __call__(self, embedded, features, positions, cache, cache_mask):
        """embedded, features [B, K, D]; positions [B, K]; cache (k, v) [Lyr, B, L, Nkv, H] or
        None, cache_mask [B, 1, L]. Returns predicted features [B, K, D] and the new keys and
        values [Lyr, B, K, Nkv, H]."""
        cfg = self.config
        dtype, param_dtype = jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype)
        joined = jnp.concatenate([embedded.astype(dtype), features.astype(dtype)], axis=-1)
        x = nn.DenseGeneral(
            cfg.emb_dim, use_bias=False, kernel_init=layers.declared((None, "embed")),
            dtype=dtype, param_dtype=param_dtype, name="fc",
        )(joined)  # fmt: skip
        unroll, attention = fast_path(cfg)
        if attention == PALLAS:
            attention = "xla"  # the Pallas kernel needs the model's own layer loop
        blocks = scanned_blocks(cfg.num_layers, unroll)
        rotary = layers.rotary_table(positions, cfg.head_dim, cfg.rope_theta)
        x, new_kv = blocks(cfg, attention, name="layers")(x, cache, rotary, cache_mask)
        return layers.RMSNorm(cfg.norm_eps, dtype, param_dtype, name="final_norm")(x), new_kv


@dataclasses.dataclass(frozen=True)
class EagleDraft:
    """The contract's ``FeatureDraft``: hashable; ``config`` holds the blocks' dimensions.

    ``config.emb_dim`` and ``vocab_size`` are the target's; ``config.tie_embeddings`` says
    whether the head is the table (True) or the target's ``lm_head`` (False).
    """

    config: LlamaConfig

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    @property
    def max_length(self) -> int:
        return self.config.max_length

    @property
    def feature_dim(self) -> int:
        return self.config.emb_dim

    def init_cache(self, params, batch_size: int, max_length: int) -> LlamaCache:
        del params  # the cache shape depends only on the config
        return cache_lib.empty_cache(self.config, batch_size, max_length)

    def cache_logical_axes(self) -> LlamaCache:
        return cache_lib.cache_logical_axes()

    def extend(self, params, tokens, cache):
        raise ValueError(
            "EagleDraft.extend is not allowed: the draft reads the target's features with each "
            "token; call extend_conditioned(params, tokens, features, cache), as "
            "SpeculativeDecoder does with a target that has extend_features"
        )

    def extend_conditioned(self, params, tokens, features, cache):
        """tokens [B, K], features [B, K, D] (the target's, one position back) -> logits
        [B, K, V], predicted features [B, K, D] and the cache grown by K."""
        batch, num_tokens = check_tokens(tokens, cache.lengths.shape[0], cache.max_length)
        self._check_features(features, batch, num_tokens)
        lengths = cache.lengths
        positions = lengths[:, None] + jnp.arange(num_tokens, dtype=jnp.int32)  # [B, K]
        cache_mask = jnp.arange(cache.max_length) < lengths[:, None, None]  # [B, 1, L]
        predicted, (k_new, v_new) = FeatureBlocks(self.config).apply(
            {"params": self.own(params)}, self.embed(params, tokens), features, positions,
            (cache.k, cache.v), cache_mask,
        )  # fmt: skip
        cache = cache.replace(
            k=write_at_lengths(cache.k, k_new, lengths),
            v=write_at_lengths(cache.v, v_new, lengths),
            lengths=lengths + num_tokens,
        )
        return self.logits(params, predicted), predicted, cache

    def forward_conditioned(self, params, tokens, features):
        """Uncached, teacher-forced: tokens [B, T] at positions 0..T-1 with features [B, T, D]
        -> (logits [B, T, V], predicted features [B, T, D]), as T cached calls give."""
        batch, length = check_tokens(tokens)
        self._check_features(features, batch, length)
        positions = jnp.broadcast_to(jnp.arange(length, dtype=jnp.int32), (batch, length))
        predicted, _ = FeatureBlocks(self.config).apply(
            {"params": self.own(params)}, self.embed(params, tokens), features, positions,
            None, None,
        )  # fmt: skip
        return self.logits(params, predicted), predicted

    def embed(self, params, tokens):
        return params["embed"]["embedding"][tokens].astype(self.config.dtype)  # [B, K, D]

    def logits(self, params, predicted):
        """The target's output layer on predicted features [..., D] -> [..., V] float32."""
        if self.config.tie_embeddings:
            kernel = params["embed"]["embedding"].T  # [D, V]
        else:
            kernel = params["lm_head"]["kernel"]
        return jnp.einsum(
            "...d,dv->...v", predicted, kernel.astype(predicted.dtype),
            preferred_element_type=jnp.float32,
        )  # fmt: skip

    @staticmethod
    def own(params) -> dict:
        """The draft's own (trainable) weights: fc, layers, final_norm."""
        return {k: v for k, v in params.items() if k not in FROZEN}

    def _check_features(self, features, batch, num_tokens):
        want = (batch, num_tokens, self.feature_dim)
        if tuple(jnp.shape(features)) != want:
            raise ValueError(
                f"features with shape={jnp.shape(features)} is not allowed: it must be "
                f"[B, K, D] = {want} (the target's hidden states, one per token)"
            )


def eagle_config(target: LlamaConfig, num_layers: int = 1, **overrides) -> LlamaConfig:
    """The draft's config: the target's widths (a block of the target's shape), its vocabulary
    and head kind, ``num_layers`` blocks."""
    return dataclasses.replace(target, num_layers=num_layers, **overrides)


def init_eagle(
    draft: EagleDraft, target_params: dict, key: jax.Array, from_target: bool = True
) -> dict:
    """The draft's params around the target's (shared, frozen) tables.

    ``from_target``: the blocks and final norm start as copies of the target's first
    ``num_layers`` and its final norm, and fc as [I; 0] (the embedding passes, the features
    are ignored): the draft begins as the target's early exit and training teaches it to use
    the features. With the target's depth this is the target itself (alpha 1, what tests use).
    Otherwise everything is random, fc normal with std 1/sqrt(2D).
    """
    cfg = draft.config
    own_dtype = jnp.dtype(cfg.param_dtype)
    dim = cfg.emb_dim
    if from_target:
        layers_, norm = target_params["layers"], target_params["final_norm"]
        layers_ = jax.tree.map(lambda a: a[: cfg.num_layers], layers_)
        fc = jnp.concatenate([jnp.eye(dim), jnp.zeros((dim, dim))], axis=0)
    else:
        body = LlamaLM(cfg).init(key)  # random blocks and norm of the right shapes
        layers_, norm = body["layers"], body["final_norm"]
        fc = jax.random.normal(jax.random.fold_in(key, 1), (2 * dim, dim)) / math.sqrt(2 * dim)
    # Copies in the draft's own dtype: training donates them, and they must not be the target's.
    own = {"fc": {"kernel": fc}, "layers": layers_, "final_norm": norm}
    params = jax.tree.map(lambda a: jnp.array(a, own_dtype), own)
    params["embed"] = target_params["embed"]
    if not cfg.tie_embeddings:
        params["lm_head"] = target_params["lm_head"]
    return params


def own_parameter_count(config: LlamaConfig) -> int:
    """Parameters of the draft's own weights (fc, blocks, norm), counted from shapes alone."""
    tokens = jnp.zeros((1, 1), jnp.int32)
    features = jnp.zeros((1, 1, config.emb_dim))

    def init():
        return FeatureBlocks(config).init(jax.random.key(0), features, features, tokens, None, None)

    shapes = nn.unbox(jax.eval_shape(init))
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(shapes))
