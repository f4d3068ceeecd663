"""LlamaLM against an independent implementation: Hugging Face's LlamaForCausalLM (PyTorch).

The same random weights go into both; logits must agree to float32 precision. This pins the
semantics a converted checkpoint relies on: rotary convention, GQA head grouping, norm placement,
SwiGLU and tied/untied logits.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_decode.formats.hf_llama import to_hf_llama
from spec_decode.models import LlamaConfig, LlamaLM

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.mark.parametrize("tie, num_kv_heads", [(True, 2), (False, 4)])
def test_logits_match_transformers(tie, num_kv_heads):
    cfg = LlamaConfig(
        vocab_size=64,
        num_layers=2,
        emb_dim=32,
        num_heads=4,
        num_kv_heads=num_kv_heads,
        head_dim=8,
        mlp_dim=48,
        rope_theta=500.0,
        norm_eps=1e-6,
        tie_embeddings=tie,
    )
    model = LlamaLM(cfg)
    params = model.init(jax.random.key(0))
    rng = np.random.default_rng(0)
    params = jax.tree.map(np.asarray, params)
    for name in ("attention_norm", "mlp_norm"):  # non-unit scales, so their placement matters
        scale = params["layers"][name]["scale"]
        params["layers"][name]["scale"] = scale + 0.5 * rng.standard_normal(scale.shape)
    params["final_norm"]["scale"] = 1 + 0.5 * rng.standard_normal(cfg.emb_dim)
    tokens = rng.integers(0, cfg.vocab_size, (2, 9))

    hf_model = to_hf_llama(cfg, params)
    with torch.no_grad():
        expected = hf_model(torch.from_numpy(tokens)).logits.numpy()

    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
    logits = np.asarray(jax.jit(LlamaLM.forward, static_argnums=0)(model, params, tokens))
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
    assert np.abs(expected).max() > 1  # logits are not degenerate
