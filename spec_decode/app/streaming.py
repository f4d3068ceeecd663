"""Decoding one round at a time, so that text can be shown as tokens are committed.

``speculative_decode`` and ``autoregressive_decode`` are single jitted while loops: nothing comes
back before every row is done. ``DecodeStream`` runs the same pure functions (``prefill``,
``draft_step``, ``parallel_verify``, ``accept_reject``, ``commit``, the same per-row round keys
and the same cache sizes) with one jitted call per round and a Python loop around it, so it
yields exactly the tokens the while loop would return for the same keys:

    stream = DecodeStream(target, t_params, draft, d_params, prompts, lengths, keys, gamma=4)
    for new_tokens in stream:          # one list per round: the tokens each row just committed
        ...
    result = stream.result()           # a DecodeResult, as speculative_decode's

With ``draft=None`` a round is one target call that emits one token (the autoregressive loop).
``TextStream`` turns a row's growing ids into printable text pieces.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from spec_decode.core import validation
from spec_decode.core.contract import LanguageModel, Params
from spec_decode.core.decoder import (
    autoregressive_step,
    final_result,
    initial_state,
    prefill,
    speculative_round,
)
from spec_decode.core.keys import row_keys
from spec_decode.core.sampling import SamplingConfig
from spec_decode.core.state import DecodeResult, DecodeState


class DecodeStream:
    """Iterate to run rounds; each step yields the tokens every row committed in that round.

    Arguments are those of ``speculative_decode`` (``draft=None``: ``autoregressive_decode``).
    Iterating twice continues where the first iteration stopped; ``result()`` may be called
    once the iteration is over.
    """

    def __init__(
        self,
        target: LanguageModel,
        target_params: Params,
        draft: LanguageModel | None,
        draft_params: Params,
        prompt_tokens: jax.Array,  # [B, P] int32, right-padded
        prompt_lengths: jax.Array | None = None,  # [B]
        key: jax.Array | None = None,  # one key or [B] keys
        *,
        gamma: int = 4,
        max_new_tokens: int = 32,
        sampling: SamplingConfig = SamplingConfig(),
        eos_id: int | None = None,
        pad_id: int = 0,
    ):
        models = (target,) if draft is None else (target, draft)
        if draft is not None:
            validation.check_int("gamma", gamma, 1)
            validation.check_vocab(target, draft)
        validation.check_int("max_new_tokens", max_new_tokens, 1)
        validation.check_sampling(sampling)
        validation.check_eos(eos_id, target.vocab_size)
        batch, width, _ = validation.check_prompts(
            prompt_tokens, prompt_lengths, max_new_tokens, validation.model_max_length(*models)
        )
        keys = row_keys(jax.random.key(0) if key is None else key, batch)
        if prompt_lengths is None:
            prompt_lengths = np.full((batch,), width, np.int32)
        self._gamma = 0 if draft is None else gamma
        self._max_new_tokens = max_new_tokens
        self._pad_id = pad_id
        self._round = functools.partial(
            _round, target, target_params, draft, draft_params,
            gamma=self._gamma, max_new_tokens=max_new_tokens, sampling=sampling, eos_id=eos_id,
        )  # fmt: skip
        self._state = _start(
            target, target_params, draft, draft_params, jnp.asarray(prompt_tokens, jnp.int32),
            jnp.asarray(prompt_lengths, jnp.int32), keys,
            gamma=self._gamma, max_new_tokens=max_new_tokens,
        )  # fmt: skip
        self._emitted = np.zeros((batch,), np.int64)

    def __iter__(self) -> Iterator[list[np.ndarray]]:
        while not bool(np.all(np.asarray(self._state.done))):
            self._state = self._round(self._state)
            num_generated = np.asarray(self._state.num_generated)
            tokens = np.asarray(self._state.tokens)
            new = [tokens[b, self._emitted[b] : n] for b, n in enumerate(num_generated)]
            self._emitted = num_generated.astype(np.int64)
            yield new

    def result(self) -> DecodeResult:
        """Tokens and statistics so far, in the shape ``speculative_decode`` returns."""
        return final_result(self._state, self._max_new_tokens, self._pad_id, self._gamma)


@functools.partial(jax.jit, static_argnames=("target", "draft", "gamma", "max_new_tokens"))
def _start(
    target, target_params, draft, draft_params, prompt_tokens, prompt_lengths, keys,
    *, gamma, max_new_tokens,
) -> DecodeState:  # fmt: skip
    """Prefill and the initial loop state, with the caches sized as the while loops size them."""
    width = prompt_tokens.shape[1]
    if draft is None:
        cache = prefill(
            target, target_params, prompt_tokens, prompt_lengths, width + max_new_tokens + 1
        )
        return initial_state(cache, None, prompt_tokens, prompt_lengths, keys, 0, max_new_tokens)
    cache_length = width + max_new_tokens + gamma + 2
    return initial_state(
        prefill(target, target_params, prompt_tokens, prompt_lengths, cache_length),
        prefill(draft, draft_params, prompt_tokens, prompt_lengths, cache_length),
        prompt_tokens, prompt_lengths, keys, gamma, max_new_tokens,
    )  # fmt: skip


@functools.partial(
    jax.jit,
    static_argnames=("target", "draft", "gamma", "max_new_tokens", "sampling", "eos_id"),
    donate_argnames=("state",),
)
def _round(
    target, target_params, draft, draft_params, state: DecodeState,
    *, gamma, max_new_tokens, sampling, eos_id,
) -> DecodeState:  # fmt: skip
    """One round of the while loop's body (a speculative round, or one autoregressive step)."""
    if draft is None:
        return autoregressive_step(
            target, target_params, state, max_new_tokens=max_new_tokens, sampling=sampling,
            eos_id=eos_id,
        )  # fmt: skip
    return speculative_round(
        target, target_params, draft, draft_params, state, gamma=gamma,
        max_new_tokens=max_new_tokens, sampling=sampling, eos_id=eos_id,
    )  # fmt: skip


class TextStream:
    """Printable text pieces of a growing id sequence, safe across split UTF-8 characters.

    A byte-level BPE token can end in the middle of a multi-byte character; decoding it alone
    gives U+FFFD. So every update decodes the whole sequence and returns only the new suffix,
    holding back a trailing U+FFFD until the character is complete.
    """

    def __init__(self, tokenizer, skip_special_tokens: bool = True):
        self._tokenizer = tokenizer
        self._skip_special = skip_special_tokens
        self._ids: list[int] = []
        self._shown = ""

    def push(self, ids: Sequence[int]) -> str:
        """Add ids; return the text that became printable (possibly empty)."""
        self._ids.extend(int(i) for i in ids)
        text = self._tokenizer.decode(self._ids, skip_special_tokens=self._skip_special)
        if text.endswith("\ufffd") or not text.startswith(self._shown):
            return ""
        piece, self._shown = text[len(self._shown) :], text
        return piece

    def flush(self) -> str:
        """Whatever is still held back (an incomplete character at the very end)."""
        text = self._tokenizer.decode(self._ids, skip_special_tokens=self._skip_special)
        piece = text[len(self._shown) :] if text.startswith(self._shown) else ""
        self._shown = text
        return piece

    @property
    def text(self) -> str:
        return self._tokenizer.decode(self._ids, skip_special_tokens=self._skip_special)
