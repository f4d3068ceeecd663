"""llama.cpp's GGUF files: ``reader`` opens a file and reads metadata, ``llama`` maps a
Llama-architecture file onto ``LlamaLM`` parameters (dequantising, undoing the rotary row order).

    model, params = load_gguf_llama("SmolLM2-135M-Instruct.Q4_1.gguf")
"""

from spec_decode.formats.gguf.llama import (
    llama_config_from_gguf,
    load_gguf_llama,
    unpermute_rotary_rows,
)
from spec_decode.formats.gguf.reader import metadata, open_gguf

__all__ = [
    "llama_config_from_gguf",
    "load_gguf_llama",
    "metadata",
    "open_gguf",
    "unpermute_rotary_rows",
]
