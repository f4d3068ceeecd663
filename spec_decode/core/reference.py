"""A slow, plain Python-loop version of the same algorithm: the oracle for tests and debugging.

One row at a time, no cache reuse (every distribution comes from a fresh pass over the whole
sequence), numpy for the adjustments and the acceptance rule, and the same per-row, per-round
keys as ``spec_decode.core.decoder`` so that both give the same tokens for the same seed.
"""

from __future__ import annotations

import jax
import numpy as np

from spec_decode.core.keys import as_typed_key
from spec_decode.core.sampling import SamplingConfig


def reference_probs(logits: np.ndarray, sampling: SamplingConfig) -> np.ndarray:
    """Adjusted distribution of one logits vector [V], in float64 numpy."""
    logits = np.asarray(logits, np.float64)
    if sampling.temperature == 0:
        probs = np.zeros_like(logits)
        probs[int(np.argmax(logits))] = 1.0
        return probs
    logits = logits / sampling.temperature
    if 0 < sampling.top_k < logits.size:
        kth = np.sort(logits)[::-1][sampling.top_k - 1]
        logits = np.where(logits >= kth, logits, -np.inf)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    if sampling.top_p < 1:
        order = np.argsort(-probs, kind="stable")
        mass_before = 0.0
        keep = np.zeros(probs.size, bool)
        for i in order:
            if mass_before >= sampling.top_p:
                break
            keep[i] = True
            mass_before += probs[i]
        threshold = probs[keep].min()
        probs = np.where(probs >= threshold, probs, 0.0)
        probs /= probs.sum()
    return probs


def _next_probs(model, params, sequence, sampling) -> np.ndarray:
    """The model's adjusted distribution after ``sequence``, from an uncached pass."""
    tokens = np.asarray(sequence, np.int32)[None, :]
    cache = model.init_cache(params, 1, len(sequence))
    logits, _ = model.extend(params, tokens, cache)
    return reference_probs(np.asarray(logits[0, -1]), sampling)


def _draw(key, probs: np.ndarray) -> int:
    """Gumbel-max with the same noise as ``spec_decode.core.sampling.sample_from``."""
    gumbel = np.asarray(jax.random.gumbel(key, probs.shape))
    with np.errstate(divide="ignore"):
        scores = np.where(probs > 0, np.log(probs) + gumbel, -np.inf)
    return int(np.argmax(scores))


def reference_speculative_decode(
    target, target_params, draft, draft_params, prompt, key, *,
    gamma: int, max_new_tokens: int, sampling: SamplingConfig, eos_id: int | None = None,
) -> tuple[list[int], list[int]]:  # fmt: skip
    """Decode one row (``prompt`` a list of ids, ``key`` that row's key).

    Returns (generated tokens, drafts accepted in each round).
    """
    key = as_typed_key(key)
    sequence, generated, accepted_per_round = list(prompt), [], []
    step = 0
    while True:
        round_key = jax.random.split(jax.random.fold_in(key, step), 2)
        draft_keys = jax.random.split(round_key[0], gamma)
        drafts, q = [], []
        for i in range(gamma):
            q.append(_next_probs(draft, draft_params, sequence + drafts, sampling))
            drafts.append(_draw(draft_keys[i], q[-1]))
        p = [_next_probs(target, target_params, sequence + drafts[:i], sampling)
             for i in range(gamma + 1)]  # fmt: skip
        key_uniform, key_next = jax.random.split(round_key[1])
        r = np.asarray(jax.random.uniform(key_uniform, (gamma,)))
        n = 0
        while n < gamma and r[n] * q[n][drafts[n]] < p[n][drafts[n]]:
            n += 1
        if n < gamma:
            residual = np.maximum(p[n] - q[n], 0.0)
            residual = residual / residual.sum() if residual.sum() > 0 else p[n]
        else:
            residual = p[gamma]
        emitted = drafts[:n] + [_draw(key_next, residual)]
        accepted_per_round.append(n)
        step += 1
        for token in emitted:
            generated.append(token)
            sequence.append(token)
            if token == eos_id or len(generated) == max_new_tokens:
                return generated, accepted_per_round


def reference_autoregressive_decode(
    model, params, prompt, key, *, max_new_tokens: int, sampling: SamplingConfig,
    eos_id: int | None = None,
) -> list[int]:  # fmt: skip
    """Plain sampling with the same keys as ``autoregressive_decode``."""
    key = as_typed_key(key)
    sequence, generated = list(prompt), []
    for step in range(max_new_tokens):
        (sample_key,) = jax.random.split(jax.random.fold_in(key, step), 1)
        token = _draw(sample_key, _next_probs(model, params, sequence, sampling))
        generated.append(token)
        sequence.append(token)
        if token == eos_id:
            break
    return generated
