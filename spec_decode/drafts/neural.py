"""A small neural draft sharing the target's embedding table, optionally with a subset head.

The draft is a Llama-style body (its own layers and final norm) that embeds tokens with the
target's (frozen) embedding table and scores the next token against rows of that same table.
A subset head scores only M frequent tokens: every other token gets logit -inf, i.e. q = 0,
which keeps speculative sampling exact (the target still emits such tokens, through the
residual) while the output layer costs M / V of a full one.

params = {"body": LlamaLM params (``embed/embedding`` is the target's table),
          "subset": int32 [M] token ids (M = V: the full vocabulary),
          optionally "head": the subset's rows of the table [M, D], gathered once for decoding
          (``with_head_rows``; otherwise every step gathers them: M x D more memory traffic)}
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from spec_decode.models.llama import LlamaCache, LlamaConfig, LlamaLM


@dataclasses.dataclass(frozen=True)
class SharedEmbeddingDraft:
    """The model contract for the draft; ``body`` holds the architecture (tied embeddings)."""

    body: LlamaConfig

    def __post_init__(self):
        if not self.body.tie_embeddings:
            raise ValueError("body.tie_embeddings=False is not allowed: the head is the table")

    @property
    def vocab_size(self) -> int:
        return self.body.vocab_size

    @property
    def max_length(self) -> int:
        return self.body.max_length

    @property
    def lm(self) -> LlamaLM:
        return LlamaLM(self.body)

    def init_cache(self, params, batch_size: int, max_length: int) -> LlamaCache:
        return self.lm.init_cache(params["body"], batch_size, max_length)

    def cache_logical_axes(self) -> LlamaCache:
        return self.lm.cache_logical_axes()

    def extend(self, params, tokens, cache):
        hidden, cache = self.lm.extend_hidden(params["body"], tokens, cache)  # [B, K, D]
        return self.head(params, hidden), cache

    def prefill(self, params, tokens, cache):
        """The cache after ``extend``, without the head (the contract's optional ``prefill``)."""
        return self.lm.prefill(params["body"], tokens, cache)

    def forward(self, params, tokens):
        """Uncached logits [B, T, V] (training and analysis)."""
        return self.head(params, self.lm.forward_hidden(params["body"], tokens))

    def subset_logits(self, params, hidden):
        """Logits over the subset only: [B, T, M] float32."""
        rows = params.get("head")  # the subset's rows, gathered once (``with_head_rows``)
        if rows is None:
            rows = params["body"]["embed"]["embedding"][params["subset"]]  # [M, D]
        return jnp.einsum(
            "btd,md->btm", hidden, rows.astype(hidden.dtype), preferred_element_type=jnp.float32
        )

    def head(self, params, hidden):
        logits = self.subset_logits(params, hidden)  # [B, T, M]
        if params["subset"].shape[0] == self.vocab_size:
            return jnp.zeros_like(logits).at[..., params["subset"]].set(logits)
        full = jnp.full(logits.shape[:-1] + (self.vocab_size,), -jnp.inf, jnp.float32)
        return full.at[..., params["subset"]].set(logits)


def init_draft(
    body: LlamaConfig, target_params: dict, subset: jax.Array, key, from_target: bool = True
) -> dict:
    """The draft around the target's embedding table and a given subset.

    ``from_target``: start from the target's first ``body.num_layers`` layers and its final
    norm (same widths required), a far better start than random layers: the draft begins as
    the target's early exit and distillation only has to correct it.
    """
    params = LlamaLM(body).init(key)
    params["embed"]["embedding"] = target_params["embed"]["embedding"]
    if from_target:
        layers = target_params["layers"]
        if "qkv" in layers["attention"]:  # a fused target (the GPU's): the draft is canonical
            layers = LlamaLM(body).unfuse_params(target_params)["layers"]
        # Copies: training donates the draft's buffers, which must not be the target's.
        # ...in the draft's parameter dtype: a bfloat16 target still trains float32 weights.
        own = jnp.dtype(body.param_dtype)
        params["layers"] = jax.tree.map(lambda a: jnp.array(a[: body.num_layers], own), layers)
        params["final_norm"] = jax.tree.map(
            lambda a: jnp.array(a, own), target_params["final_norm"]
        )
    return {"body": params, "subset": jnp.asarray(subset, jnp.int32)}


def own_weights(params: dict) -> dict:
    """The draft's own trainable weights (everything but the shared table and the subset)."""
    return {k: v for k, v in params["body"].items() if k != "embed"}


def with_head_rows(params: dict, dtype=None) -> dict:
    """``params`` plus the subset's rows of the (frozen) table, gathered once (and cast to the
    draft's activation ``dtype``): a decoding step then reads M x D values instead of gathering
    and writing them first. For decoding; training keeps the gather (one tree to update)."""
    table = params["body"]["embed"]["embedding"]
    if params["subset"].shape[0] == table.shape[0]:
        return params  # a full head: a copy of the whole table would double its memory
    rows = table[params["subset"]]
    return dict(params, head=rows if dtype is None else rows.astype(dtype))
