"""Models implementing the contract in ``spec_decode.core.contract``."""

from spec_decode.models.llama import LlamaCache, LlamaConfig, LlamaLM, tiny_llama

__all__ = ["LlamaCache", "LlamaConfig", "LlamaLM", "tiny_llama"]
