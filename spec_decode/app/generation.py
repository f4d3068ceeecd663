"""``spec-decode generate``: prompts in, samples out, as a Python API the CLI wraps.

Every (prompt i, sample j) is one row of a ragged batch, with its own key
``fold_in(fold_in(key(seed), i), j)``: a sample does not depend on how many samples or prompts
were asked for, nor on how rows are grouped into batches (``batch_size``).

    options = GenerateOptions(mode="speculative", draft="prompt-lookup", max_new_tokens=32)
    for sample in generate(["Why is the sky blue?"], options):
        print(sample.text, sample.stats)
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from spec_decode.app import registry
from spec_decode.app.streaming import TextStream
from spec_decode.core.decoder import DecoderParams, SpeculativeDecoder
from spec_decode.core.sampling import SamplingConfig
from spec_decode.core.validation import check_gamma, check_int

MODES = ("speculative", "autoregressive")
LONG_PREFILL = 1024  # prompt tokens from which a prefill is announced on stderr
_compiled: set = set()  # (decoder, prompt shape) pairs this process has run: compiled


@dataclasses.dataclass(frozen=True)
class GenerateOptions:
    """What ``generate`` does; the defaults are the CLI's. Checked on construction.

    Attributes:
      target, draft: names from ``registry.TARGETS`` / ``registry.DRAFTS`` (the draft is not
        loaded in autoregressive mode).
      mode: "speculative" or "autoregressive".
      gamma: draft tokens per round (speculative mode), or "auto": chosen each round by a
        ``GammaPolicy`` over costs measured on this machine at the batch size (up to max_gamma).
      sampling: temperature / top-k / top-p, applied to target and draft alike.
      seed: the root of every row's key.
      max_new_tokens: per sample; a sample also stops at the tokenizer's EOS.
      num_samples: independent samples per prompt.
      chat: apply the chat template; None = the target's default (chat for instruct models).
      batch_size: rows per decoder call (the last batch is padded, so one compilation).
      draft_dir: the directory of ``smollm2-draft``'s or ``smollm2-eagle``'s weights (None:
        the asset path); the other drafts ignore it.
    """

    target: str = registry.DEFAULT_TARGET
    draft: str = registry.DEFAULT_DRAFT
    mode: str = "speculative"
    gamma: int | str = 4
    max_gamma: int = 6
    sampling: SamplingConfig = SamplingConfig()
    seed: int = 0
    max_new_tokens: int = 128
    num_samples: int = 1
    chat: bool | None = None
    batch_size: int = 64
    draft_dir: str | None = None

    def __post_init__(self):
        registry.check_name("target", self.target, registry.TARGETS)
        registry.check_name("draft", self.draft, registry.DRAFTS)
        registry.check_name("mode", self.mode, MODES)
        if self.gamma != "auto":
            check_gamma(self.gamma, with_draft=True)
        check_gamma(self.max_gamma, with_draft=True)
        check_int("seed", self.seed, 0)
        check_int("max_new_tokens", self.max_new_tokens, 1)
        check_int("num_samples", self.num_samples, 1)
        check_int("batch_size", self.batch_size, 1)
        if not isinstance(self.sampling, SamplingConfig):
            raise ValueError(f"sampling={self.sampling!r} is not allowed: pass a SamplingConfig")


@dataclasses.dataclass(frozen=True)
class Sample:
    """One generated sample: the JSON object ``spec-decode generate --json`` prints."""

    prompt: str
    sample: int  # index j among the prompt's num_samples
    tokens: list[int]  # generated ids (EOS included when emitted)
    text: str  # decoded without special tokens
    stats: dict[str, Any]  # DecodeResult.row_summary: calls, accepted drafts, alpha, histogram

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Batch:
    """Rows of prompts ready for a decoder: ids [B, P] right-padded, lengths [B], keys [B]."""

    tokens: np.ndarray  # [B, P] int32
    lengths: np.ndarray  # [B] int32
    keys: jax.Array  # [B] typed keys


def sample_key(seed: int, prompt_index: int, sample_index: int) -> jax.Array:
    """The key of sample j of prompt i: independent of batching and of the other rows."""
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), prompt_index), sample_index)


def make_batch(rows: Sequence[tuple[list[int], jax.Array]], width: int, pad_id: int) -> Batch:
    """Right-pad each row's ids to ``width``."""
    tokens = np.full((len(rows), width), pad_id, np.int32)
    for b, (ids, _) in enumerate(rows):
        tokens[b, : len(ids)] = ids
    lengths = np.array([len(ids) for ids, _ in rows], np.int32)
    return Batch(tokens, lengths, jnp.stack([key for _, key in rows]))


def encode_prompts(
    prompts: Sequence[str], target: registry.Target, chat: bool | None
) -> list[list[int]]:
    """Token ids of every prompt; a prompt that encodes to nothing is an error."""
    if not prompts:
        raise ValueError("prompts=[] is not allowed: give at least one prompt")
    encoded = [target.encode_prompt(prompt, chat) for prompt in prompts]
    for index, ids in enumerate(encoded):
        if not ids:
            raise ValueError(
                f"prompt {index + 1} ({prompts[index]!r}) encodes to no tokens: a prompt must hold "
                "at least one token (use a non-empty prompt or --chat)"
            )
    return encoded


def make_decoder(
    options: GenerateOptions, target: registry.Target, batch_size: int = 1
) -> tuple[SpeculativeDecoder, DecoderParams]:
    """The decoder for the options' mode, draft and sampling, and its params.

    A draft that reads the target's features (``smollm2-eagle``) needs nothing more: the
    decoder sees it (``contract.reads_features``) and calls the target's ``extend_features``.

    With gamma "auto" the round costs are measured here, for ``batch_size`` rows.
    """
    draft, draft_params, gamma, policy = None, None, None, None
    if options.mode == "speculative":
        draft, draft_params = registry.load_draft(options.draft, target, options.draft_dir)
        gamma = options.gamma
        if gamma == "auto":
            from spec_decode.bench.costs import auto_policy

            policy = auto_policy(
                target.model, target.params, draft, draft_params, batch=batch_size,
                max_gamma=options.max_gamma, sampling=options.sampling,
            )  # fmt: skip
    decoder = SpeculativeDecoder(
        target.model,
        draft,
        gamma=gamma,
        max_new_tokens=options.max_new_tokens,
        sampling=options.sampling,
        eos_id=target.tokenizer.eos_id,
        policy=policy,
    )
    return decoder, DecoderParams(target.params, draft_params)


def generate(prompts: Sequence[str], options: GenerateOptions = GenerateOptions()) -> list[Sample]:
    """All samples of all prompts, prompt-major (prompt 0's samples first)."""
    return list(iter_generate(prompts, options))


def iter_generate(prompts: Sequence[str], options: GenerateOptions) -> Iterator[Sample]:
    """Samples as each batch of rows finishes."""
    target = registry.load_target(options.target)
    encoded = encode_prompts(prompts, target, options.chat)
    width = max(len(ids) for ids in encoded)
    rows = [
        (i, j, encoded[i], sample_key(options.seed, i, j))
        for i in range(len(prompts))
        for j in range(options.num_samples)
    ]
    size = min(options.batch_size, len(rows))
    decoder, params = make_decoder(options, target, size)
    for start in range(0, len(rows), size):
        chunk = rows[start : start + size]
        # Pad the last batch with copies of its last row: every call has one shape.
        padded = chunk + [chunk[-1]] * (size - len(chunk))
        batch = make_batch([(ids, key) for _, _, ids, key in padded], width, _pad(target))
        announce(decoder, batch.tokens.shape)
        result = jax.device_get(decoder.run(params, batch.tokens, batch.lengths, batch.keys))
        for b, (i, j, _, _) in enumerate(chunk):
            yield _sample(prompts[i], j, result, b, target)


def stream_generate(
    prompts: Sequence[str], options: GenerateOptions, write: Callable[[int, str], Any]
) -> Iterator[list[Sample]]:
    """Per prompt: decode its samples as one batch, call ``write(prompt_index, piece)`` with
    sample 0's text as rounds commit it, then yield all of that prompt's samples.

    Tokens equal ``generate``'s for the same options (same keys, same round functions). Every
    prompt is padded to the longest one, so the round compiles once.
    """
    target = registry.load_target(options.target)
    encoded = encode_prompts(prompts, target, options.chat)
    width = max(len(ids) for ids in encoded)
    decoder, params = make_decoder(options, target, options.num_samples)
    for i, (prompt, ids) in enumerate(zip(prompts, encoded, strict=True)):
        keys = [sample_key(options.seed, i, j) for j in range(options.num_samples)]
        batch = make_batch([(ids, key) for key in keys], width, _pad(target))
        announce(decoder, batch.tokens.shape)
        stream = decoder.stream(params, batch.tokens, batch.lengths, batch.keys)
        text = TextStream(target.tokenizer)
        for new_tokens in stream:
            write(i, text.push(new_tokens[0]))
        write(i, text.flush())
        result = jax.device_get(stream.result())
        yield [_sample(prompt, j, result, j, target) for j in range(len(keys))]


def announce(decoder: SpeculativeDecoder, shape: tuple[int, int], file=None) -> str | None:
    """Say on stderr (or ``file``) that the next call compiles or prefills a long prompt.

    Both happen inside one jitted call, so this line, printed before it, is the progress shown;
    the line is returned, or None when there is nothing to say.
    """
    parts = []
    if (decoder, shape) not in _compiled:
        _compiled.add((decoder, shape))
        parts.append(f"compiling the decoder for prompts {shape[0]} x {shape[1]} (first call)")
    if shape[1] > LONG_PREFILL:
        parts.append(f"prefilling {shape[1]:,} prompt tokens")
    if not parts:
        return None
    line = "[" + "; ".join(parts) + "...]"
    print(line, file=sys.stderr if file is None else file, flush=True)
    return line


def _sample(prompt, index, result, row, target) -> Sample:
    ids = result.tokens[row, : result.lengths[row]].tolist()
    return Sample(
        prompt=prompt,
        sample=index,
        tokens=ids,
        text=target.tokenizer.decode(ids, skip_special_tokens=True),
        stats=result.row_summary(row),
    )


def _pad(target: registry.Target) -> int:
    pad = target.tokenizer.pad_id
    return 0 if pad is None else pad


def check_prompt_text(name: str, text: str) -> str:
    """``text`` if it is a string the tokenizer can encode (valid Unicode); else a ValueError.

    A lone surrogate ("\\ud800" escaped in JSON, or invalid UTF-8 bytes on the command line,
    which Python keeps as surrogates) has no UTF-8 form, so no tokenizer can read it.
    """
    if not isinstance(text, str):
        raise ValueError(f"{name}={text!r} is not allowed: a prompt must be a string")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"{name}={_shorten(text)!r} is not allowed: it holds {text[error.start]!r} at "
            f"character {error.start}, a lone surrogate that is not valid Unicode (invalid UTF-8 "
            "bytes, or an unpaired \\ud800-\\udfff escape); pass valid UTF-8 text"
        ) from None
    return text


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def read_prompt_file(path: str) -> list[str]:
    """Prompts from a JSONL file (UTF-8): one ``{"prompt": "..."}`` object per non-empty line."""
    import json

    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        raise ValueError(f"prompt_file={path!r} cannot be read: {error.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ValueError(
            f"prompt_file={path!r} is not UTF-8 text (byte {error.start}, line {line}: "
            f"{data[error.start : error.start + 1]!r}; is it a binary file?): it must be a JSONL "
            'file, one {"prompt": "..."} object per line'
        ) from None
    prompts = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"prompt_file={path!r} line {number} is not valid JSON ({error.msg}): each line "
                'must be an object like {"prompt": "..."}'
            ) from None
        if not isinstance(record, dict) or not isinstance(record.get("prompt"), str):
            raise ValueError(
                f"prompt_file={path!r} line {number} is not allowed: each line must be an object "
                'with a string "prompt", like {"prompt": "..."}'
            )
        prompts.append(
            check_prompt_text(f"prompt_file={path!r} line {number}: prompt", record["prompt"])
        )
    if not prompts:
        raise ValueError(f"prompt_file={path!r} holds no prompts: it has no non-empty lines")
    return prompts
