"""Old import path: the GGUF-to-Llama mapping is ``spec_decode.formats.gguf.llama`` now and
``load_smollm2`` is ``spec_decode.smollm2.model``'s; both are re-exported here."""

from spec_decode.formats.gguf.llama import (
    SUPPORTED_TENSOR_TYPES,
    llama_config_from_gguf,
    load_gguf_llama,
    unpermute_rotary_rows,
)
from spec_decode.smollm2.model import load_smollm2

__all__ = [
    "SUPPORTED_TENSOR_TYPES",
    "llama_config_from_gguf",
    "load_gguf_llama",
    "load_smollm2",
    "unpermute_rotary_rows",
]
