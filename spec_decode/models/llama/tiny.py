"""The small random Llama that tests and the scripts' ``--smoke`` runs use on a CPU."""

from __future__ import annotations

import jax

from spec_decode.models.llama.config import LlamaConfig
from spec_decode.models.llama.model import LlamaLM


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
