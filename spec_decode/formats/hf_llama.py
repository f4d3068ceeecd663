"""LlamaLM params -> a Hugging Face ``LlamaForCausalLM`` (for peers and parity tests).

Both use the rotate-half rotary convention, so no permutation is needed: kernels are only
transposed to torch's [out, in] layout and the head axes flattened head-major. Needs torch and
transformers (the ``reference`` extra); imported lazily so the core never pulls them.
"""

from __future__ import annotations

import numpy as np

from spec_decode.models.llama.config import LlamaConfig


def to_hf_state_dict(cfg: LlamaConfig, params: dict) -> dict[str, np.ndarray]:
    """Our tree (canonical or fused layout) -> HF tensor names, float32 numpy arrays."""
    if cfg.fused_projections:
        from spec_decode.models.llama.model import LlamaLM

        params = LlamaLM(cfg).unfuse_params(params)
    d, f = cfg.emb_dim, cfg.mlp_dim
    layers = params["layers"]
    attention, mlp = layers["attention"], layers["mlp"]
    embedding = np.asarray(params["embed"]["embedding"], np.float32)
    state = {
        "model.embed_tokens.weight": embedding,
        "model.norm.weight": params["final_norm"]["scale"],
        "lm_head.weight": embedding if cfg.tie_embeddings else params["lm_head"]["kernel"].T,
    }
    for i in range(cfg.num_layers):
        prefix = f"model.layers.{i}."
        state[prefix + "input_layernorm.weight"] = layers["attention_norm"]["scale"][i]
        state[prefix + "post_attention_layernorm.weight"] = layers["mlp_norm"]["scale"][i]
        for ours, theirs in (("query", "q_proj"), ("key", "k_proj"), ("value", "v_proj")):
            kernel = np.asarray(attention[ours]["kernel"][i], np.float32)  # [D, N, H]
            state[prefix + f"self_attn.{theirs}.weight"] = kernel.reshape(d, -1).T
        out = np.asarray(attention["out"]["kernel"][i], np.float32)  # [N, H, D]
        state[prefix + "self_attn.o_proj.weight"] = out.reshape(-1, d).T
        state[prefix + "mlp.gate_proj.weight"] = np.asarray(mlp["gate"]["kernel"][i]).T
        state[prefix + "mlp.up_proj.weight"] = np.asarray(mlp["up"]["kernel"][i]).T
        state[prefix + "mlp.down_proj.weight"] = (
            np.asarray(mlp["down"]["kernel"][i]).reshape(f, d).T
        )
    return {name: np.asarray(value, np.float32) for name, value in state.items()}


def to_hf_llama(cfg: LlamaConfig, params: dict, torch_dtype=None, device: str = "cpu"):
    """A ``transformers.LlamaForCausalLM`` holding the same weights (eval mode)."""
    import torch
    import transformers

    hf_config = transformers.LlamaConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.emb_dim, intermediate_size=cfg.mlp_dim,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads, head_dim=cfg.head_dim, rms_norm_eps=cfg.norm_eps,
        rope_theta=cfg.rope_theta, max_position_embeddings=cfg.max_length,
        tie_word_embeddings=cfg.tie_embeddings, hidden_act="silu", attn_implementation="eager",
    )  # fmt: skip
    model = transformers.LlamaForCausalLM(hf_config)
    state = {k: torch.from_numpy(v.copy()) for k, v in to_hf_state_dict(cfg, params).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any("rotary" not in name for name in missing):  # rotary: buffers only
        raise ValueError(f"weights did not map: missing={missing}, unexpected={unexpected}")
    model = model.to(device=device, dtype=torch_dtype or torch.float32)
    return model.eval()
