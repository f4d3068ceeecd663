"""Argument checks run in Python before anything is traced: errors name the argument."""

from __future__ import annotations

import functools
import numbers

import jax
import numpy as np

from spec_decode.core import contract
from spec_decode.core.sampling import SamplingConfig


def _is_traced(x) -> bool:
    return isinstance(x, jax.core.Tracer)


def check_int(name: str, value, minimum: int) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name}={value!r} is not allowed: it must be an integer >= {minimum}")


# Past this many drafts a round costs more than it can save: with any alpha < 1 the expected
# tokens per call, (1 - alpha^(K+1)) / (1 - alpha), has all but reached its limit
# 1 / (1 - alpha) long before, while each draft still costs a draft call and widens verification.
MAX_GAMMA = 32


def check_gamma(gamma, *, with_draft: bool) -> int:
    """gamma as an int: in [1, MAX_GAMMA] with a draft (None: 4), 0 or None without one."""
    if not with_draft:
        if gamma not in (None, 0):
            raise ValueError(
                f"gamma={gamma!r} is not allowed without a draft: leave it None (or 0); the "
                "autoregressive baseline drafts nothing"
            )
        return 0
    if gamma is None:
        return 4
    if (
        not isinstance(gamma, numbers.Integral)
        or isinstance(gamma, bool)
        or not (1 <= gamma <= MAX_GAMMA)
    ):
        raise ValueError(
            f"gamma={gamma!r} is not allowed: it must be an integer >= 1 and <= {MAX_GAMMA} "
            "(drafts per round; beyond a few dozen every extra draft costs a call and can no "
            "longer raise the tokens per call)"
        )
    return int(gamma)


def check_policy(policy, *, with_draft: bool) -> None:
    """gamma="auto" needs a draft and a ``GammaPolicy`` whose max_gamma is within MAX_GAMMA."""
    from spec_decode.core.policy import GammaPolicy

    if not with_draft:
        raise ValueError(
            "gamma='auto' is not allowed without a draft: the autoregressive baseline drafts "
            "nothing"
        )
    if not isinstance(policy, GammaPolicy):
        raise ValueError(
            f"policy={policy!r} is not allowed with gamma='auto': pass "
            "policy=GammaPolicy(RoundCosts(...)) with measured costs "
            "(spec_decode.bench.measure_round_costs measures them)"
        )
    if policy.max_gamma > MAX_GAMMA:
        raise ValueError(
            f"policy with max_gamma={policy.max_gamma} is not allowed: it must be <= {MAX_GAMMA}"
        )


def check_sampling(sampling) -> None:
    if not isinstance(sampling, SamplingConfig):
        raise ValueError(
            f"sampling={sampling!r} is not allowed: pass a spec_decode.SamplingConfig "
            "(temperature >= 0, top_k >= 0, top_p in (0, 1])"
        )


def check_prompts(
    prompt_tokens,
    prompt_lengths,
    max_new_tokens: int,
    max_length: int | None,
    vocab_size: int | None = None,
):
    """Validate prompts [B, P] and lengths [B]; return (B, P, lengths as an array).

    Concrete values are checked here, before tracing: integer ids in [0, V) everywhere (padding
    included), lengths in [1, P]. Values traced by an outer ``jax.jit`` cannot be read now, so
    the same checks are staged into the computation as a host callback that fails the call
    (a ``JaxRuntimeError`` carrying the same message) instead of returning a wrong row.
    """
    shape = np.shape(prompt_tokens)
    if len(shape) != 2:
        raise ValueError(
            f"prompt_tokens with shape={shape} is not allowed: it must be 2-D [B, P] "
            "(right-padded token ids, one row per sequence)"
        )
    batch, width = shape
    if batch < 1:
        raise ValueError(f"prompt_tokens with batch size B={batch} is not allowed: B must be >= 1")
    if width < 1:
        raise ValueError(f"prompt_tokens with width P={width} is not allowed: P must be >= 1")
    _check_integer_dtype("prompt_tokens", prompt_tokens, "token ids")
    if prompt_lengths is None:
        prompt_lengths = np.full((batch,), width, np.int32)
    if np.shape(prompt_lengths) != (batch,):
        raise ValueError(
            f"prompt_lengths with shape={np.shape(prompt_lengths)} is not allowed: "
            f"it must be [B] = ({batch},)"
        )
    _check_integer_dtype("prompt_lengths", prompt_lengths, "lengths")
    traced = _is_traced(prompt_lengths) or _is_traced(prompt_tokens)
    if not _is_traced(prompt_tokens) and vocab_size is not None:
        _check_ids(np.asarray(prompt_tokens), vocab_size)
    if not _is_traced(prompt_lengths):
        lengths = np.asarray(prompt_lengths)
        _check_lengths(lengths, width)
        longest = int(lengths.max())
        if max_length is not None and longest + max_new_tokens > max_length:
            raise ValueError(
                f"prompt length {longest} + max_new_tokens={max_new_tokens} = "
                f"{longest + max_new_tokens} is not allowed: it exceeds the model's maximum length "
                f"{max_length}"
            )
    elif max_length is not None and width + max_new_tokens > max_length:
        raise ValueError(
            f"prompt width P={width} + max_new_tokens={max_new_tokens} is not allowed: it exceeds "
            f"the model's maximum length {max_length}"
        )
    if traced:
        jax.debug.callback(
            functools.partial(_check_at_run_time, width=width, vocab_size=vocab_size),
            prompt_tokens,
            prompt_lengths,
        )
    return batch, width, prompt_lengths


def _check_integer_dtype(name: str, value, what: str) -> None:
    dtype = value.dtype if hasattr(value, "dtype") else np.asarray(value).dtype
    if not np.issubdtype(dtype, np.integer):
        raise ValueError(
            f"{name} with dtype={dtype} is not allowed: {what} must be integers (a float such as "
            "5.7 would be silently truncated)"
        )


def check_ids(name: str, tokens: np.ndarray, vocab_size: int, why: str) -> None:
    """Every id of ``tokens`` [B, K] in [0, vocab_size); the error names the first bad one."""
    bad = (tokens < 0) | (tokens >= vocab_size)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name}[{row}, {col}]={int(tokens[row, col])} is not allowed: {why} must be in "
            f"[0, {vocab_size})"
        )


def _check_ids(tokens: np.ndarray, vocab_size: int) -> None:
    check_ids("prompt_tokens", tokens, vocab_size, "every id, padding included (pad with 0),")


def _check_lengths(lengths: np.ndarray, width: int) -> None:
    if lengths.min() < 1 or lengths.max() > width:
        raise ValueError(
            f"prompt_lengths={lengths.tolist()} is not allowed: each must be in [1, {width}] "
            "(a prompt holds at least one token, e.g. BOS)"
        )


def _check_at_run_time(tokens, lengths, *, width: int, vocab_size: int | None) -> None:
    _check_lengths(np.asarray(lengths), width)
    if vocab_size is not None:
        _check_ids(np.asarray(tokens), vocab_size)


def check_eos(eos_id, vocab_size: int) -> None:
    if eos_id is None:
        return
    if not isinstance(eos_id, numbers.Integral) or not 0 <= eos_id < vocab_size:
        raise ValueError(
            f"eos_id={eos_id!r} is not allowed: it must be None or an integer in [0, {vocab_size})"
        )


def check_vocab(target, draft) -> None:
    if target.vocab_size != draft.vocab_size:
        raise ValueError(
            f"draft vocab_size={draft.vocab_size} is not allowed: it must equal the target's "
            f"vocab_size={target.vocab_size} (both models must share one vocabulary)"
        )


def check_features(target, draft) -> None:
    """A draft that reads the target's features needs a target that gives them, of its width."""
    if not contract.reads_features(draft):
        return
    if not contract.gives_features(target):
        raise ValueError(
            f"draft={type(draft).__name__} is not allowed with target={type(target).__name__}: "
            "the draft reads the target's features, and the target has no extend_features / "
            "prefill_features (contract.FeatureTarget)"
        )
    if draft.feature_dim != target.feature_dim:
        raise ValueError(
            f"draft feature_dim={draft.feature_dim} is not allowed: it must equal the target's "
            f"feature_dim={target.feature_dim} (the draft reads the target's hidden states)"
        )


def model_max_length(*models) -> int | None:
    """The smallest ``max_length`` any model declares (None when none declares one)."""
    limits = [m.max_length for m in models]
    limits = [int(x) for x in limits if x is not None]
    return min(limits) if limits else None
