"""The Llama network as one Flax module: embedding, scanned decoder blocks, final norm, logits.

The blocks are one ``nn.scan`` whatever ``layer_unroll``: unrolled or not, every layer
parameter keeps its leading ``layers`` axis, so one tree serves both.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from spec_decode.models.llama import layers, pallas_attention
from spec_decode.models.llama.attention import BLOCKED, PALLAS
from spec_decode.models.llama.config import LlamaConfig, fast_path


def scanned_blocks(num_layers: int, unroll: int):
    """``layers.DecoderBlock`` scanned over ``num_layers`` (params stacked [Lyr, ...] under
    'layers'; carry x; the cache per layer; rotary and mask broadcast)."""
    return nn.scan(
        layers.DecoderBlock,
        variable_axes={"params": 0},
        split_rngs={"params": True},
        in_axes=(0, nn.broadcast, nn.broadcast),
        length=num_layers,
        unroll=unroll,
        metadata_params={nn.PARTITION_NAME: "layers"},
    )


class Transformer(nn.Module):
    """Embedding, scanned decoder blocks, final norm and (with ``head``) the output layer."""

    config: LlamaConfig
    # False: return the final-normed hidden states [B, K, D] instead of logits, for heads that
    # live outside the model (a draft scoring only a subset of the vocabulary).
    head: bool = True
    # True: attention reads the cache in blocks below the rows' lengths (``attend_blocked``), for
    # prefill chunks, whatever the backend's attention.
    blocked: bool = False

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
        unroll, attention = fast_path(cfg)
        if self.blocked:
            attention = BLOCKED
        if attention == PALLAS and (
            cache is None or not pallas_attention.supported(tokens.shape[1], cfg.head_dim)
        ):
            attention = "xla"  # uncached forward passes and long prefill chunks
        rotary = layers.rotary_table(positions, cfg.head_dim, cfg.rope_theta)
        if attention == PALLAS and "layers" in self.variables.get("params", {}):
            x, new_kv = self._pallas_layers(x, rotary, cache, positions[:, 0])
        else:
            if attention == PALLAS:
                attention = "xla"  # init: nothing to read yet, the same parameters
            blocks = scanned_blocks(cfg.num_layers, unroll)
            x, new_kv = blocks(cfg, attention, name="layers")(x, cache, rotary, cache_mask)
        x = layers.RMSNorm(cfg.norm_eps, dtype, param_dtype, name="final_norm")(x)
        if not self.head:
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

    def _pallas_layers(self, x, rotary, cache, lengths):
        """The layers unrolled in Python over the scanned tree, each reading the whole cache at
        its index through the Pallas kernel (``pallas_attention.py``).

        Not ``nn.scan``: under jax 0.11 flax's scan refuses a Pallas call in its body
        ("broadcasted variable has a data dependency on the scan body"). The block is applied
        as a pure function to each layer's slice of the ``layers`` parameters, so the tree is
        the one ``nn.scan`` declares.
        """
        stacked = self.variables["params"]["layers"]  # every leaf [Lyr, ...]
        block = layers.DecoderBlock(self.config, PALLAS, parent=None)
        carry, new_kv = (x, jnp.int32(0), rotary, cache, lengths), []
        for index in range(self.config.num_layers):
            params = jax.tree.map(lambda p, index=index: p[index], stacked)
            carry, kv = block.apply({"params": params}, carry, None, None, None)
            new_kv.append(kv)
        return carry[0], jax.tree.map(lambda *kv: jnp.stack(kv), *new_kv)
