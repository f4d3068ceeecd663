"""Named targets and drafts for the command line: ``--target smollm2-135m --draft smollm2-draft``.

A target bundles a model, its params and its tokenizer; a draft is built for a given target:

    name            what it is                                          needs
    smollm2-draft   the neural draft distilled from SmolLM2 (default)   assets/smollm2_draft/
    bigram          sparse bigram counts of SmolLM2-generated text      assets/smollm2_ngrams/
    unigram         unigram counts of SmolLM2-generated text            assets/smollm2_ngrams/
    prompt-lookup   copy what followed the current suffix earlier       nothing

The n-gram assets are ``np.savez`` files of the draft params: ``unigram.npz`` holds
``log_probs`` [V] (``ngram_params_from_tokens(order=1)``), ``bigram.npz`` the four arrays of
``sparse_bigram_params_from_tokens`` (m = ``next_tokens.shape[1]``). A draft whose asset is not
shipped fails with an error saying so; ``prompt-lookup`` always works.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import numpy as np

from spec_decode.core.contract import LanguageModel, Params
from spec_decode.core.sampling import SamplingConfig

ASSETS = Path(__file__).resolve().parents[1] / "assets"
NGRAM_ASSETS = ASSETS / "smollm2_ngrams"

DEFAULT_TARGET = "smollm2-135m"
DEFAULT_DRAFT = "smollm2-draft"
TARGETS = ("smollm2-135m",)
DRAFTS = ("smollm2-draft", "bigram", "unigram", "prompt-lookup")
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


@functools.lru_cache(maxsize=2)
def load_target(name: str = DEFAULT_TARGET) -> Target:
    """The target called ``name`` (see ``TARGETS``), loaded once per process."""
    check_name("target", name, TARGETS)
    from spec_decode.smollm2 import load_smollm2, load_smollm2_tokenizer

    model, params = load_smollm2()
    return Target(name, model, params, load_smollm2_tokenizer(), chat=True)


def load_draft(name: str, target: Target) -> tuple[LanguageModel, Params]:
    """The draft called ``name`` (see ``DRAFTS``) for ``target``: (model, params)."""
    check_name("draft", name, DRAFTS)
    return _load_draft_cached(name, target.name)


@functools.lru_cache(maxsize=4)
def _load_draft_cached(name: str, target_name: str) -> tuple[LanguageModel, Params]:
    target = load_target(target_name)
    vocab = target.model.vocab_size
    if name == "prompt-lookup":
        from spec_decode.drafts import PromptLookupDraft

        return PromptLookupDraft(vocab), None
    if name == "smollm2-draft":
        return _neural_draft(target)
    arrays = _ngram_asset(name)
    if name == "unigram":
        from spec_decode.drafts import UnigramDraft

        return UnigramDraft(vocab), arrays
    from spec_decode.drafts import SparseBigramDraft

    return SparseBigramDraft(vocab, int(arrays["next_tokens"].shape[1])), arrays


def _neural_draft(target: Target) -> tuple[LanguageModel, Params]:
    try:
        from spec_decode.distill.checkpoint import load_draft as load_neural_draft

        return load_neural_draft(target.params, dtype=target.model.config.dtype)
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"draft='smollm2-draft' is not available: {str(error).rstrip('.')}. "
            "Use --draft prompt-lookup (needs no asset) meanwhile."
        ) from error


def _ngram_asset(name: str) -> dict[str, Any]:
    path = NGRAM_ASSETS / f"{name}.npz"
    if not path.is_file():
        raise FileNotFoundError(
            f"draft={name!r} is not available: its count table {path} is not shipped in this "
            f"installation. Use --draft prompt-lookup (needs no asset) meanwhile."
        )
    import jax.numpy as jnp

    with np.load(path) as data:
        return {key: jnp.asarray(data[key]) for key in data.files}


def draft_available(name: str, target: Target) -> bool:
    """Whether ``load_draft(name, target)`` would succeed (the asset is shipped)."""
    try:
        load_draft(name, target)
    except FileNotFoundError:
        return False
    return True
