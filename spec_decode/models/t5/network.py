"""The T5 encoder-decoder Transformer with exactly T5X's parameter tree (non-scanned layers).

    token_embedder/embedding                                [V, D]     (vocab, embed)
    encoder/relpos_bias/rel_embedding                       [N, 32]    (heads, relpos_buckets)
    encoder/layers_i/pre_attention_layer_norm/scale         [D]        (embed,)
    encoder/layers_i/attention/{query,key,value}/kernel     [D, N*H]   (embed, joined_kv)
    encoder/layers_i/attention/out/kernel                   [N*H, D]   (joined_kv, embed)
    encoder/layers_i/pre_mlp_layer_norm/scale               [D]
    encoder/layers_i/mlp/{wi_0, wi_1 | wi}/kernel           [D, F]     (embed, mlp)
    encoder/layers_i/mlp/wo/kernel                          [F, D]     (mlp, embed)
    encoder/encoder_norm/scale                              [D]
    decoder/relpos_bias/rel_embedding                       [N, 32]
    decoder/layers_i/{self_attention, encoder_decoder_attention}/...   as encoder attention
    decoder/layers_i/pre_{self,cross}_attention_layer_norm/scale, pre_mlp_layer_norm/scale, mlp
    decoder/decoder_norm/scale                              [D]
    decoder/logits_dense/kernel                             [D, V]     (embed, vocab); T5 1.1 only

``__call__``, ``encode`` and ``decode`` have T5X's signatures and semantics (teacher forcing,
padding and packing masks). Cached decoding goes through ``cross_attention_kv`` and ``extend``
(K tokens per call, each row at its own position) or ``prefill`` (the same without the output
layer), used by ``T5Decoding``.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from spec_decode.models.t5.blocks import DecoderLayer, EncoderLayer
from spec_decode.models.t5.cache import T5Cache
from spec_decode.models.t5.config import RELPOS_MAX_DISTANCE, RELPOS_NUM_BUCKETS, T5Config
from spec_decode.models.t5.layers import DenseGeneral, Embed, LayerNorm, RelativePositionBiases


def _relpos_bias(cfg: T5Config) -> RelativePositionBiases:
    return RelativePositionBiases(
        num_buckets=RELPOS_NUM_BUCKETS,
        max_distance=RELPOS_MAX_DISTANCE,
        num_heads=cfg.num_heads,
        dtype=cfg.activation_dtype,
    )


def _reject_decode(decode: bool) -> None:
    if decode:
        raise ValueError(
            "decode=True is not allowed: cached decoding goes through "
            "spec_decode.models.t5.T5Decoding (init_cache / extend)"
        )


def pairwise_mask(query: jax.Array, key: jax.Array, fn=jnp.logical_and) -> jax.Array:
    """query [B, Q], key [B, Kk] -> fn(query_i, key_j) as a [B, 1, Q, Kk] mask (1 = attend)."""
    return fn(query[:, :, None], key[:, None, :])[:, None]


class Encoder(nn.Module):
    """Token embedding, bidirectional blocks with relative positions, final norm."""

    config: T5Config
    shared_embedding: nn.Module

    def setup(self):
        cfg = self.config
        self.relpos_bias = _relpos_bias(cfg)
        self.layers = [EncoderLayer(cfg) for _ in range(cfg.num_encoder_layers)]
        self.encoder_norm = LayerNorm(dtype=cfg.activation_dtype)
        self.input_dropout = nn.Dropout(rate=cfg.dropout_rate, broadcast_dims=(-2,))
        self.output_dropout = nn.Dropout(rate=cfg.dropout_rate)

    def __call__(
        self, encoder_input_tokens: jax.Array, encoder_mask: jax.Array, deterministic: bool
    ) -> jax.Array:
        """tokens [B, S], mask [B, 1, S, S] -> encoded [B, S, D]."""
        cfg = self.config
        x = self.shared_embedding(encoder_input_tokens.astype(jnp.int32))  # [B, S, D]
        x = self.input_dropout(x, deterministic=deterministic).astype(cfg.activation_dtype)
        positions = jnp.arange(encoder_input_tokens.shape[1])[None]  # [1, S]
        bias = self.relpos_bias(positions, positions, bidirectional=True)  # [1, N, S, S]
        for layer in self.layers:
            x = layer(x, encoder_mask, bias, deterministic=deterministic)
        x = self.encoder_norm(x)
        return self.output_dropout(x, deterministic=deterministic)


class Decoder(nn.Module):
    """Causal blocks attending to the encoder, final norm, logits (float32)."""

    config: T5Config
    shared_embedding: nn.Module

    def setup(self):
        cfg = self.config
        self.relpos_bias = _relpos_bias(cfg)
        self.layers = [DecoderLayer(cfg) for _ in range(cfg.num_decoder_layers)]
        self.decoder_norm = LayerNorm(dtype=cfg.activation_dtype)
        self.dropout = nn.Dropout(rate=cfg.dropout_rate, broadcast_dims=(-2,))
        if not cfg.logits_via_embedding:
            self.logits_dense = DenseGeneral(
                cfg.vocab_size, dtype=jnp.float32, kernel_axes=("embed", "vocab")
            )

    def __call__(
        self,
        encoded: jax.Array,
        decoder_input_tokens: jax.Array,
        decoder_mask: jax.Array,
        encoder_decoder_mask: jax.Array,
        deterministic: bool,
    ) -> jax.Array:
        """Teacher-forced: tokens [B, T] -> logits [B, T, V] given encoded [B, S, D]."""
        positions = jnp.arange(decoder_input_tokens.shape[1])[None]  # [1, T]
        bias = self.relpos_bias(positions, positions, bidirectional=False)  # [1, N, T, T]
        y = self._embed(decoder_input_tokens, deterministic)
        for layer in self.layers:
            y, _ = layer(
                y,
                layer.cross_kv(encoded),
                decoder_mask,
                bias,
                encoder_decoder_mask,
                deterministic=deterministic,
            )
        return self._logits(y, deterministic)

    def cross_attention_kv(self, encoded: jax.Array) -> tuple[jax.Array, jax.Array]:
        """encoded [B, S, D] -> every layer's cross keys, values, each [Lyr, B, S, N, H]."""
        keys, values = zip(*(layer.cross_kv(encoded) for layer in self.layers), strict=True)
        return jnp.stack(keys), jnp.stack(values)

    def extend(
        self, tokens: jax.Array, cache: T5Cache
    ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        """tokens [B, K] at positions lengths[b] + i -> logits [B, K, V], new keys and values.

        Token i of row b attends to cache slots j < lengths[b] and to new tokens 0..i; its
        relative position bias to a key at position p is that of (p - lengths[b] - i). The new
        keys and values, [Lyr, B, K, N, H], are returned for the caller to write.
        """
        y, new_kv = self._blocks(tokens, cache)
        return self._logits(y, deterministic=True), new_kv

    def prefill(self, tokens: jax.Array, cache: T5Cache) -> tuple[jax.Array, jax.Array]:
        """``extend`` without the output layer (final norm, logits): the new keys and values
        [Lyr, B, K, N, H] only, for prompt tokens whose logits nobody reads."""
        _, new_kv = self._blocks(tokens, cache)
        return new_kv

    def _blocks(
        self, tokens: jax.Array, cache: T5Cache
    ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        """The decoder blocks of ``extend``: outputs [B, K, D] and the new keys and values."""
        batch, num_tokens = tokens.shape
        max_length = cache.max_length
        lengths = cache.lengths
        query_positions = lengths[:, None] + jnp.arange(num_tokens)  # [B, K]
        slots = jnp.broadcast_to(jnp.arange(max_length), (batch, max_length))  # [B, L]
        key_positions = jnp.concatenate([slots, query_positions], axis=1)  # [B, L + K]
        key_valid = jnp.concatenate(
            [slots < lengths[:, None], jnp.ones((batch, num_tokens), bool)], axis=1
        )
        self_mask = key_valid[:, None, :] & (
            key_positions[:, None, :] <= query_positions[:, :, None]
        )  # [B, K, L + K]
        self_bias = self.relpos_bias(query_positions, key_positions, bidirectional=False)
        cross_mask = cache.encoder_mask[:, None, None, :]  # [B, 1, 1, S]

        y = self._embed(tokens, deterministic=True)
        new_keys, new_values = [], []
        for index, layer in enumerate(self.layers):
            y, (key, value) = layer(
                y,
                (cache.cross_keys[index], cache.cross_values[index]),
                self_mask[:, None],
                self_bias,
                cross_mask,
                cached_kv=(cache.self_keys[index], cache.self_values[index]),
            )
            new_keys.append(key)
            new_values.append(value)
        return y, (jnp.stack(new_keys), jnp.stack(new_values))

    def _embed(self, tokens: jax.Array, deterministic: bool) -> jax.Array:
        y = self.shared_embedding(tokens.astype(jnp.int32))  # [B, K, D]
        return self.dropout(y, deterministic=deterministic).astype(self.config.activation_dtype)

    def _logits(self, y: jax.Array, deterministic: bool) -> jax.Array:
        y = self.decoder_norm(y)
        y = self.dropout(y, deterministic=deterministic)
        if self.config.logits_via_embedding:
            # T5 1.0 shares the embedding; dividing by sqrt(D) keeps the logits' scale sane.
            return self.shared_embedding.attend(y) / jnp.sqrt(y.shape[-1])
        return self.logits_dense(y)  # [B, K, V] float32


class Transformer(nn.Module):
    """An encoder-decoder T5 (1.0 or 1.1 by config), T5X's ``examples/t5/network.Transformer``."""

    config: T5Config

    def setup(self):
        cfg = self.config
        self.token_embedder = Embed(
            num_embeddings=cfg.vocab_size, features=cfg.emb_dim, dtype=cfg.activation_dtype
        )
        self.encoder = Encoder(config=cfg, shared_embedding=self.token_embedder)
        self.decoder = Decoder(config=cfg, shared_embedding=self.token_embedder)

    def encode(
        self,
        encoder_input_tokens: jax.Array,
        encoder_segment_ids: jax.Array | None = None,
        enable_dropout: bool = True,
    ) -> jax.Array:
        """tokens [B, S] (0 = padding) -> encoded [B, S, D]."""
        if encoder_input_tokens.ndim != 2:
            raise ValueError(
                f"encoder_input_tokens.shape={encoder_input_tokens.shape} is not allowed: it "
                "must be [B, S]"
            )
        real = encoder_input_tokens > 0
        mask = pairwise_mask(real, real)
        if encoder_segment_ids is not None:
            mask &= pairwise_mask(encoder_segment_ids, encoder_segment_ids, jnp.equal)
        return self.encoder(encoder_input_tokens, mask, deterministic=not enable_dropout)

    def decode(
        self,
        encoded: jax.Array,
        encoder_input_tokens: jax.Array,
        decoder_input_tokens: jax.Array,
        decoder_target_tokens: jax.Array,
        encoder_segment_ids: jax.Array | None = None,
        decoder_segment_ids: jax.Array | None = None,
        decoder_positions: jax.Array | None = None,
        enable_dropout: bool = True,
        decode: bool = False,
        max_decode_length: int | None = None,
    ) -> jax.Array:
        """Teacher-forced decoder: logits [B, T, V] (float32) for decoder_input_tokens [B, T].

        As in T5X, query and key positions whose target is 0 (padding) are masked, and
        ``encoder_input_tokens`` [B, S] serve only for the padding mask. T5X's ``decode=True``
        (one token per step through a mutable cache) is replaced by ``T5Decoding``.
        """
        del decoder_positions, max_decode_length  # unused by T5X's network too
        _reject_decode(decode)
        targets = decoder_target_tokens > 0
        length = decoder_target_tokens.shape[1]
        causal = jnp.arange(length)[:, None] >= jnp.arange(length)[None, :]  # [T, T]
        decoder_mask = causal[None, None] & pairwise_mask(targets, targets)
        encoder_decoder_mask = pairwise_mask(targets, encoder_input_tokens > 0)
        if decoder_segment_ids is not None:
            decoder_mask &= pairwise_mask(decoder_segment_ids, decoder_segment_ids, jnp.equal)
        if encoder_segment_ids is not None:
            encoder_decoder_mask &= pairwise_mask(
                decoder_segment_ids, encoder_segment_ids, jnp.equal
            )
        return self.decoder(
            encoded,
            decoder_input_tokens,
            decoder_mask,
            encoder_decoder_mask,
            deterministic=not enable_dropout,
        )

    def __call__(
        self,
        encoder_input_tokens: jax.Array,
        decoder_input_tokens: jax.Array,
        decoder_target_tokens: jax.Array,
        encoder_segment_ids: jax.Array | None = None,
        decoder_segment_ids: jax.Array | None = None,
        encoder_positions: jax.Array | None = None,
        decoder_positions: jax.Array | None = None,
        *,
        enable_dropout: bool = True,
        decode: bool = False,
    ) -> jax.Array:
        """Encode, then teacher-forced decode: logits [B, T, V].

        ``decoder_input_tokens`` are ``decoder_target_tokens`` shifted right with 0 as BOS.
        """
        del encoder_positions  # unused by T5X's network too
        _reject_decode(decode)
        encoded = self.encode(encoder_input_tokens, encoder_segment_ids, enable_dropout)
        return self.decode(
            encoded,
            encoder_input_tokens,
            decoder_input_tokens,
            decoder_target_tokens,
            encoder_segment_ids=encoder_segment_ids,
            decoder_segment_ids=decoder_segment_ids,
            decoder_positions=decoder_positions,
            enable_dropout=enable_dropout,
            decode=decode,
        )

    def cross_attention_kv(self, encoded: jax.Array) -> tuple[jax.Array, jax.Array]:
        """encoded [B, S, D] -> cross keys, values [Lyr, B, S, N, H] for ``T5Cache``."""
        return self.decoder.cross_attention_kv(encoded)

    def extend(
        self, tokens: jax.Array, cache: T5Cache
    ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        """Cached decoder step: tokens [B, K] -> logits [B, K, V], new keys, values."""
        return self.decoder.extend(tokens, cache)

    def prefill(self, tokens: jax.Array, cache: T5Cache) -> tuple[jax.Array, jax.Array]:
        """Cached decoder step without the output layer: tokens [B, K] -> new keys, values."""
        return self.decoder.prefill(tokens, cache)
