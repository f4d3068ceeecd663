"""Model families implementing the contract in ``spec_decode.core.contract``.

One folder per family:

    llama/   decoder-only Llama (SmolLM2): LlamaLM, LlamaConfig, LlamaCache, tiny_llama
    t5/      T5 the T5X way: T5Decoding, T5Config, Transformer (import spec_decode.models.t5)
"""

from spec_decode.models.llama import LlamaCache, LlamaConfig, LlamaLM, layers, tiny_llama

__all__ = ["LlamaCache", "LlamaConfig", "LlamaLM", "layers", "tiny_llama"]
