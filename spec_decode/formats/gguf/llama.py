"""Loading a Llama-architecture GGUF file (SmolLM2's, for one) into ``LlamaLM`` parameters.

A GGUF file is llama.cpp's container: key/value metadata (``llama.block_count``, the tokenizer's
vocabulary...) and named, possibly quantised tensors. Three things differ from Hugging Face's
layout and are undone here:

1. **Dimension order.** GGUF lists a tensor's dims fastest-first (``ne``: ``attn_q`` is
   ``[in, out]``); ``GGUFReader`` already exposes the data in numpy order, i.e. reversed, which is
   torch's ``nn.Linear`` layout ``[out, in]``. Our kernels are ``[in, ...out]``, so we transpose.
2. **Quantisation.** Blocks of Q4_1/Q8_0... are dequantised to float32 by ``gguf.quants``, then
   cast once to the requested dtype.
3. **Rotary row order.** llama.cpp rotates adjacent pairs (2i, 2i+1) of each head, Hugging Face
   rotates halves (i, i + H/2). Its converter therefore reorders the rows of ``attn_q`` and
   ``attn_k`` within each head from ``[half, i]`` to ``[i, half]``; ``unpermute_rotary_rows``
   puts them back, so that our rotate-half attention sees Hugging Face's weights.

Name map (``blk.{l}`` stacked over l on a leading axis; shapes of one layer):

    token_embd          [V, D]          -> embed/embedding        [V, D]
    blk.l.attn_norm     [D]             -> layers/attention_norm/scale
    blk.l.attn_q        [N*H, D]        -> layers/attention/query/kernel  [D, N, H]
    blk.l.attn_k/v      [Nkv*H, D]      -> layers/attention/key|value/kernel  [D, Nkv, H]
    blk.l.attn_output   [D, N*H]        -> layers/attention/out/kernel    [N, H, D]
    blk.l.ffn_norm      [D]             -> layers/mlp_norm/scale
    blk.l.ffn_gate/up   [F, D]          -> layers/mlp/gate|up/kernel      [D, F]
    blk.l.ffn_down      [D, F]          -> layers/mlp/down/kernel         [F, D]
    output_norm         [D]             -> final_norm/scale
    output (optional)   [V, D]          -> lm_head/kernel         [D, V]  (absent: tied)
"""

from __future__ import annotations

import os
from typing import Any

import gguf
import jax.numpy as jnp
import numpy as np

from spec_decode.formats.gguf.reader import SUPPORTED_ARCHITECTURES, metadata, open_gguf
from spec_decode.models.llama import LlamaConfig, LlamaLM

Params = dict[str, Any]

SUPPORTED_TENSOR_TYPES = (
    "F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0",
    "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
)  # fmt: skip


def unpermute_rotary_rows(weight: np.ndarray, num_heads: int) -> np.ndarray:
    """Undo llama.cpp's rotary row order of a q or k weight [num_heads * H, D].

    Within each head llama.cpp stores row 2i + half of Hugging Face's row half * H/2 + i
    (interleaved pairs instead of halves); this returns Hugging Face's order.
    """
    rows, cols = weight.shape
    head_dim = rows // num_heads
    pairs = weight.reshape(num_heads, head_dim // 2, 2, cols)  # [N, H/2, half, D]
    return pairs.transpose(0, 2, 1, 3).reshape(rows, cols)  # [N, half, H/2, D]


def llama_config_from_gguf(reader: gguf.GGUFReader, name: str, dtype: Any) -> LlamaConfig:
    """A LlamaConfig from ``llama.*`` metadata; ValueError for what LlamaLM cannot represent."""
    architecture = metadata(reader, "general.architecture")
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise ValueError(
            f"{name}: general.architecture={architecture!r} is not supported; "
            f"supported: {SUPPORTED_ARCHITECTURES}."
        )
    emb_dim = int(metadata(reader, "llama.embedding_length"))
    num_heads = int(metadata(reader, "llama.attention.head_count"))
    head_dim = int(metadata(reader, "llama.attention.key_length", emb_dim // num_heads))
    rotary_dims = int(metadata(reader, "llama.rope.dimension_count", head_dim))
    scaling = metadata(reader, "llama.rope.scaling.type", "none")
    if rotary_dims != head_dim or scaling != "none":
        raise ValueError(
            f"{name}: rotary over {rotary_dims} of {head_dim} dims with scaling {scaling!r} is "
            f"not supported; supported: full-head rotary without scaling."
        )
    return LlamaConfig(
        vocab_size=len(metadata(reader, "tokenizer.ggml.tokens")),
        num_layers=int(metadata(reader, "llama.block_count")),
        emb_dim=emb_dim,
        num_heads=num_heads,
        num_kv_heads=int(metadata(reader, "llama.attention.head_count_kv", num_heads)),
        head_dim=head_dim,
        mlp_dim=int(metadata(reader, "llama.feed_forward_length")),
        rope_theta=float(metadata(reader, "llama.rope.freq_base", 10000.0)),
        norm_eps=float(metadata(reader, "llama.attention.layer_norm_rms_epsilon")),
        tie_embeddings=all(tensor.name != "output.weight" for tensor in reader.tensors),
        dtype=dtype,
        param_dtype=dtype,
        max_length=int(metadata(reader, "llama.context_length")),
    )


def _dequantized(
    tensors: dict[str, Any], name: str, shape: tuple[int, ...], file_name: str
) -> np.ndarray:
    """Tensor ``name`` as float32 in numpy (torch) order, checked against ``shape``."""
    tensor = tensors.get(name)
    if tensor is None:
        raise ValueError(f"{file_name}: tensor {name!r} is missing.")
    kind = tensor.tensor_type.name
    if kind not in SUPPORTED_TENSOR_TYPES:
        raise ValueError(
            f"{file_name}: tensor {name!r} has type {kind}; supported: {SUPPORTED_TENSOR_TYPES}."
        )
    values = np.asarray(gguf.quants.dequantize(tensor.data, tensor.tensor_type), np.float32)
    values = values.reshape(tuple(int(n) for n in reversed(tensor.shape)))
    if values.shape != shape:
        raise ValueError(f"{file_name}: tensor {name!r} has shape {values.shape}, want {shape}.")
    return values


def load_gguf_llama(path: str | os.PathLike, dtype: Any = jnp.float32) -> tuple[LlamaLM, Params]:
    """Read a Llama GGUF file into ``(LlamaLM, params)``, params dequantised and cast to ``dtype``.

    Raises:
      FileNotFoundError: ``path`` does not exist.
      ValueError: not a GGUF file, another architecture, or an unsupported quantisation.
    """
    name = os.fspath(path)
    reader = open_gguf(path)
    config = llama_config_from_gguf(reader, name, dtype)
    tensors = {tensor.name: tensor for tensor in reader.tensors}
    vocab, dim, mlp = config.vocab_size, config.emb_dim, config.mlp_dim
    heads, kv_heads, head_dim = config.num_heads, config.num_kv_heads, config.head_dim

    def get(tensor_name: str, *shape: int) -> np.ndarray:
        return _dequantized(tensors, tensor_name, shape, name)

    def stacked(suffix: str, *shape: int, num_heads: int = 0) -> jnp.ndarray:  # [Lyr, *shape]
        """``blk.{l}.{suffix}`` of every layer, in GGUF's (torch) layout, stacked on axis 0."""
        per_layer = [get(f"blk.{i}.{suffix}", *shape) for i in range(config.num_layers)]
        if num_heads:
            per_layer = [unpermute_rotary_rows(weight, num_heads) for weight in per_layer]
        return jnp.asarray(np.stack(per_layer), dtype=dtype)

    def kernel(suffix: str, out_dim: int, in_dim: int, num_heads: int = 0) -> jnp.ndarray:
        """A torch-layout [out, in] weight of every layer as a kernel [Lyr, in, out]."""
        return stacked(suffix, out_dim, in_dim, num_heads=num_heads).swapaxes(1, 2)

    layers = config.num_layers
    query = kernel("attn_q.weight", heads * head_dim, dim, num_heads=heads)
    key = kernel("attn_k.weight", kv_heads * head_dim, dim, num_heads=kv_heads)
    value = kernel("attn_v.weight", kv_heads * head_dim, dim)
    out = kernel("attn_output.weight", dim, heads * head_dim)
    params: Params = {
        "embed": {"embedding": jnp.asarray(get("token_embd.weight", vocab, dim), dtype=dtype)},
        "layers": {
            "attention_norm": {"scale": stacked("attn_norm.weight", dim)},
            "attention": {
                "query": {"kernel": query.reshape(layers, dim, heads, head_dim)},
                "key": {"kernel": key.reshape(layers, dim, kv_heads, head_dim)},
                "value": {"kernel": value.reshape(layers, dim, kv_heads, head_dim)},
                "out": {"kernel": out.reshape(layers, heads, head_dim, dim)},
            },
            "mlp_norm": {"scale": stacked("ffn_norm.weight", dim)},
            "mlp": {
                "gate": {"kernel": kernel("ffn_gate.weight", mlp, dim)},
                "up": {"kernel": kernel("ffn_up.weight", mlp, dim)},
                "down": {"kernel": kernel("ffn_down.weight", dim, mlp)},
            },
        },
        "final_norm": {"scale": jnp.asarray(get("output_norm.weight", dim), dtype=dtype)},
    }
    if not config.tie_embeddings:
        params["lm_head"] = {"kernel": jnp.asarray(get("output.weight", vocab, dim).T, dtype)}
    return LlamaLM(config), params
