"""T5's encoder and decoder blocks (pre-norm residual attention and MLP), T5X's names.

    encoder/layers_i: pre_attention_layer_norm, attention, pre_mlp_layer_norm, mlp
    decoder/layers_i: pre_self_attention_layer_norm, self_attention,
                      pre_cross_attention_layer_norm, encoder_decoder_attention,
                      pre_mlp_layer_norm, mlp

Relative position biases are computed once per stack (``relpos_bias`` belongs to the stack,
shared by its layers) and handed to each block.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from spec_decode.models.t5.attention import MultiHeadDotProductAttention
from spec_decode.models.t5.config import T5Config
from spec_decode.models.t5.layers import LayerNorm, MlpBlock

KeyValue = tuple[jax.Array, jax.Array]


def _attention(cfg: T5Config, cross: bool = False) -> MultiHeadDotProductAttention:
    """``cross``: attention to the encoder (its keys and values project another input)."""
    fused = "q_kv" if cross else "qkv"
    return MultiHeadDotProductAttention(
        num_heads=cfg.num_heads,
        head_dim=cfg.head_dim,
        features=cfg.emb_dim,
        dtype=cfg.activation_dtype,
        dropout_rate=cfg.dropout_rate,
        float32_logits=cfg.float32_attention_logits,
        implementation=cfg.attention_implementation,
        projections=fused if cfg.fused_projections else "separate",
    )


def _mlp(cfg: T5Config) -> MlpBlock:
    return MlpBlock(
        intermediate_dim=cfg.mlp_dim,
        activations=cfg.mlp_activations,
        intermediate_dropout_rate=cfg.dropout_rate,
        dtype=cfg.activation_dtype,
        fused=cfg.fused_projections,
    )


def _residual_dropout(cfg: T5Config) -> nn.Dropout:
    # Broadcast over the length axis: one mask per (batch, feature), as in T5.
    return nn.Dropout(rate=cfg.dropout_rate, broadcast_dims=(-2,))


class EncoderLayer(nn.Module):
    """Bidirectional self-attention then MLP, each pre-normed and residual."""

    config: T5Config

    def setup(self):
        cfg = self.config
        self.pre_attention_layer_norm = LayerNorm(dtype=cfg.activation_dtype)
        self.attention = _attention(cfg)
        self.pre_mlp_layer_norm = LayerNorm(dtype=cfg.activation_dtype)
        self.mlp = _mlp(cfg)
        self.dropout = _residual_dropout(cfg)

    def __call__(
        self, inputs: jax.Array, mask: jax.Array, bias: jax.Array, deterministic: bool = True
    ) -> jax.Array:
        """inputs [B, S, D], mask [B, 1, S, S], bias [1, N, S, S] -> [B, S, D]."""
        x = self.pre_attention_layer_norm(inputs)
        x = self.attention(x, x, mask, bias, deterministic=deterministic)
        x = self.dropout(x, deterministic=deterministic) + inputs
        y = self.mlp(self.pre_mlp_layer_norm(x), deterministic=deterministic)
        return self.dropout(y, deterministic=deterministic) + x


class DecoderLayer(nn.Module):
    """Causal self-attention, attention to the encoder, then MLP; pre-normed and residual.

    One code path serves the full forward pass and cached decoding: the block's new keys and
    values are appended to ``cached_kv`` (keys of earlier positions, or nothing) and returned,
    so the caller decides where they are stored.
    """

    config: T5Config

    def setup(self):
        cfg = self.config
        self.pre_self_attention_layer_norm = LayerNorm(dtype=cfg.activation_dtype)
        self.self_attention = _attention(cfg)
        self.pre_cross_attention_layer_norm = LayerNorm(dtype=cfg.activation_dtype)
        self.encoder_decoder_attention = _attention(cfg, cross=True)
        self.pre_mlp_layer_norm = LayerNorm(dtype=cfg.activation_dtype)
        self.mlp = _mlp(cfg)
        self.dropout = _residual_dropout(cfg)

    def cross_kv(self, encoded: jax.Array) -> KeyValue:
        """Encoder output [B, S, D] -> this block's cross keys, values [B, S, N, H]."""
        return self.encoder_decoder_attention.project_kv(encoded)

    def __call__(
        self,
        inputs: jax.Array,
        cross_kv: KeyValue,
        self_mask: jax.Array,
        self_bias: jax.Array,
        cross_mask: jax.Array,
        cached_kv: KeyValue | None = None,
        deterministic: bool = True,
    ) -> tuple[jax.Array, KeyValue]:
        """inputs [B, K, D] -> outputs [B, K, D] and this call's keys, values [B, K, N, H].

        Self-attention keys are ``cached_kv`` [B, L, N, H] (if any) followed by the K new ones;
        ``self_mask`` [B, 1, K, L + K] and ``self_bias`` [B, N, K, L + K] index them in that
        order. ``cross_mask`` broadcasts to [B, 1, K, S].
        """
        x = self.pre_self_attention_layer_norm(inputs)
        query, new_key, new_value = self.self_attention.project_qkv(x)  # [B, K, N, H] each
        key, value = new_key, new_value
        if cached_kv is not None:
            key = jnp.concatenate([cached_kv[0].astype(key.dtype), key], axis=1)
            value = jnp.concatenate([cached_kv[1].astype(value.dtype), value], axis=1)
        x = self.self_attention.attend(query, key, value, self_mask, self_bias, deterministic)
        x = self.dropout(x, deterministic=deterministic) + inputs

        y = self.pre_cross_attention_layer_norm(x)
        y = self.encoder_decoder_attention.attend(
            self.encoder_decoder_attention.query(y), *cross_kv, cross_mask, None, deterministic
        )
        y = self.dropout(y, deterministic=deterministic) + x

        z = self.mlp(self.pre_mlp_layer_norm(y), deterministic=deterministic)
        z = self.dropout(z, deterministic=deterministic) + y
        return z, (new_key, new_value)
