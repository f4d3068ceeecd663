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

from spec_decode.models import LlamaConfig, LlamaLM

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def _hf_state_dict(cfg: LlamaConfig, params: dict) -> dict:
    """Our tree -> HF tensor names ([out, in] weights, heads flattened head-major)."""
    d, f = cfg.emb_dim, cfg.mlp_dim
    layers = params["layers"]
    attention, mlp = layers["attention"], layers["mlp"]
    state = {
        "model.embed_tokens.weight": params["embed"]["embedding"],
        "model.norm.weight": params["final_norm"]["scale"],
        "lm_head.weight": (
            params["embed"]["embedding"] if cfg.tie_embeddings else params["lm_head"]["kernel"].T
        ),
    }
    for i in range(cfg.num_layers):
        prefix = f"model.layers.{i}."
        state.update(
            {
                prefix + "input_layernorm.weight": layers["attention_norm"]["scale"][i],
                prefix + "post_attention_layernorm.weight": layers["mlp_norm"]["scale"][i],
                prefix + "self_attn.q_proj.weight": attention["query"]["kernel"][i]
                .reshape(d, -1)
                .T,
                prefix + "self_attn.k_proj.weight": attention["key"]["kernel"][i].reshape(d, -1).T,
                prefix + "self_attn.v_proj.weight": attention["value"]["kernel"][i]
                .reshape(d, -1)
                .T,
                prefix + "self_attn.o_proj.weight": attention["out"]["kernel"][i].reshape(-1, d).T,
                prefix + "mlp.gate_proj.weight": mlp["gate"]["kernel"][i].T,
                prefix + "mlp.up_proj.weight": mlp["up"]["kernel"][i].T,
                prefix + "mlp.down_proj.weight": mlp["down"]["kernel"][i].reshape(f, d).T,
            }
        )
    return {name: torch.from_numpy(np.array(value, np.float32)) for name, value in state.items()}


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

    hf_config = transformers.LlamaConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.emb_dim,
        intermediate_size=cfg.mlp_dim,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads,
        head_dim=cfg.head_dim,
        rope_theta=cfg.rope_theta,
        rms_norm_eps=cfg.norm_eps,
        tie_word_embeddings=cfg.tie_embeddings,
        attn_implementation="eager",
    )
    hf_model = transformers.LlamaForCausalLM(hf_config).eval()
    missing, unexpected = hf_model.load_state_dict(_hf_state_dict(cfg, params), strict=False)
    assert not unexpected and all("rotary" in name for name in missing)
    with torch.no_grad():
        expected = hf_model(torch.from_numpy(tokens)).logits.numpy()

    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
    logits = np.asarray(jax.jit(LlamaLM.forward, static_argnums=0)(model, params, tokens))
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
    assert np.abs(expected).max() > 1  # logits are not degenerate
