"""The Llama family: a decoder-only transformer with Hugging Face's semantics, for the core.

One concept per file:

    config.py   LlamaConfig, the static dimensions
    layers.py   RMSNorm, rotary, the attention and SwiGLU modules, the decoder block
    attention.py  grouped-query attention: einsum blocks, or jax.nn.dot_product_attention
    network.py  the Flax module: embedding, scanned blocks, final norm, logits
    cache.py    LlamaCache, keys and values of every layer
    model.py    LlamaLM, the model contract (init, init_cache, extend, forward)
    tiny.py     tiny_llama, the small random model of tests and smoke runs
"""

from spec_decode.models.llama import layers
from spec_decode.models.llama.cache import LlamaCache
from spec_decode.models.llama.config import LlamaConfig
from spec_decode.models.llama.model import LlamaLM
from spec_decode.models.llama.tiny import tiny_llama

__all__ = ["LlamaCache", "LlamaConfig", "LlamaLM", "layers", "tiny_llama"]
