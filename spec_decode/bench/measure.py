"""One benchmark record: autoregressive vs speculative, same models, same process.

Timing excludes compilation and warm-up (each decoder runs once first), blocks until results
are ready, interleaves the two decoders' repeats, and reports the median over repeats. Tokens
per second count generated tokens only.
"""

from __future__ import annotations

import dataclasses
import functools
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from spec_decode.core import contract, theory
from spec_decode.core.functional import autoregressive_decode, speculative_decode
from spec_decode.core.sampling import SamplingConfig, adjusted_probs


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    gamma: int
    batch: int
    temperature: float
    max_new_tokens: int = 64
    repeats: int = 3


def time_call(fn: Callable[[], Any], repeats: int = 3) -> tuple[float, Any]:
    """Median seconds of ``fn()`` over ``repeats`` runs after one warm-up run; last output."""
    return time_calls({"fn": fn}, repeats)["fn"]


def time_calls(
    fns: dict[str, Callable[[], Any]], repeats: int = 3, warmup: int = 1
) -> dict[str, tuple]:
    """Each of ``fns`` run ``warmup`` times untimed, then timed ``repeats`` times, interleaved
    (a, b, a, b...) so that a machine that slows down for a while slows all of them alike:
    name -> (median seconds, last output). Outputs may be anything; jax arrays are waited for."""
    if warmup < 1:
        raise ValueError(f"warmup={warmup} is not allowed: at least 1 (the compiling run)")
    for _ in range(warmup):
        outs = {name: jax.block_until_ready(fn()) for name, fn in fns.items()}
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            outs[name] = jax.block_until_ready(fn())
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(times[name]), outs[name]) for name in fns}


@functools.partial(jax.jit, static_argnums=(0, 2, 3))
def _context_cache(model, params, batch: int, context: int):
    """A cache of 2 * context positions holding ``context`` of them, made in one call."""
    cache = model.init_cache(params, batch, 2 * context)
    _, cache = model.extend(params, jnp.ones((batch, context), jnp.int32), cache)
    return cache


@functools.partial(jax.jit, static_argnums=0)
def _step(model, params, tokens, cache):
    return model.extend(params, tokens, cache)[0]


def measure_cost_ratio(target, target_params, draft, draft_params, batch: int, repeats=20,
                       context: int = 64):  # fmt: skip
    """c = time of one draft step / time of one target step (jitted extend, K = 1, batch B).

    Both caches hold ``context`` positions, so attention over the cache is part of a step. The
    models are static arguments of module-level jits: a model measured again compiles nothing.
    Returns (c, target seconds, draft seconds).
    """

    def step_time(model, params):
        cache = _context_cache(model, params, batch, context)
        token = jnp.ones((batch, 1), jnp.int32)
        seconds, _ = time_call(lambda: _step(model, params, token, cache), repeats)
        return seconds

    target_s, draft_s = step_time(target, target_params), step_time(draft, draft_params)
    return draft_s / target_s, target_s, draft_s


def packed_continuations(prompts, prompt_lengths, tokens, lengths) -> tuple[np.ndarray, np.ndarray]:
    """Each row's prompt then its generated tokens, packed left: sequences [B, P + N] and
    the mask [B, P + N] of positions whose next token was generated (the positions that
    speculative decoding drafted for). ``prompt_lengths`` None: the prompts are unpadded."""
    prompts, tokens = np.asarray(prompts), np.asarray(tokens)
    batch, width = prompts.shape[0], prompts.shape[1] + tokens.shape[1]
    if prompt_lengths is None:  # prompts without padding
        prompt_lengths = prompts.shape[1]
    prompt_lengths = np.broadcast_to(np.asarray(prompt_lengths), (batch,))
    lengths = np.broadcast_to(np.asarray(lengths), (batch,))
    sequences = np.zeros((batch, width), np.int32)
    mask = np.zeros((batch, width), bool)
    for row, (n, g) in enumerate(zip(prompt_lengths, lengths, strict=True)):
        sequences[row, :n] = prompts[row, :n]
        sequences[row, n : n + g] = tokens[row, :g]
        mask[row, n - 1 : n + g - 1] = True
    return sequences, mask


def analytic_alpha(target, target_params, draft, draft_params, sequences, sampling, mask=None):
    """Mean of sum_x min(p(x), q(x)) over the positions of ``sequences`` [B, T] where ``mask``
    [B, T] is set (all positions when None); see ``packed_continuations``.

    A draft that reads the target's features (``contract.reads_features``) is scored on the
    target's true hidden states one position back: what it reads for every verified position.
    """
    sequences = jnp.asarray(sequences, jnp.int32)
    batch, length = sequences.shape

    def probs(model, params):
        cache = model.init_cache(params, batch, length)
        logits, _ = model.extend(params, sequences, cache)
        return adjusted_probs(logits, sampling)

    def conditioned_probs(model, params, target_params):
        hidden = target.forward_hidden(target_params, sequences)  # [B, T, D]
        features = jnp.pad(hidden, ((0, 0), (1, 0), (0, 0)))[:, :-1]  # h_{t-1}, zeros first
        logits, _ = model.forward_conditioned(params, sequences, features)
        return adjusted_probs(logits, sampling)

    p = jax.jit(probs, static_argnums=0)(target, target_params)
    if contract.reads_features(draft):
        q = jax.jit(conditioned_probs, static_argnums=0)(draft, draft_params, target_params)
    else:
        q = jax.jit(probs, static_argnums=0)(draft, draft_params)
    overlap = np.asarray(jnp.sum(jnp.minimum(p, q), axis=-1))
    if mask is None:
        return float(overlap.mean())
    mask = np.asarray(mask, bool)
    if not mask.any():
        raise ValueError("mask selects no position: there is nothing to average")
    return float(overlap[mask].mean())


def measure_pair(
    target, target_params, draft, draft_params, prompts, prompt_lengths, config: BenchConfig,
    *, cost_ratio: float, eos_id=None, seed: int = 0, mesh=None, rules=None,
) -> dict:  # fmt: skip
    """Time both decoders on the same prompts [B, P]; return one record (see BENCHMARKS.md).

    With ``mesh`` (params and prompts already placed by ``spec_decode.sharding``) both decoders
    run on it with the logical axis ``rules``.
    """
    sampling = SamplingConfig(temperature=config.temperature)
    keys = jax.random.split(jax.random.key(seed), prompts.shape[0])
    common = dict(
        max_new_tokens=config.max_new_tokens, sampling=sampling, eos_id=eos_id, mesh=mesh,
        rules=rules,
    )  # fmt: skip
    timed = time_calls(
        {
            "autoregressive": lambda: autoregressive_decode(
                target, target_params, prompts, prompt_lengths, keys, **common
            ),
            "speculative": lambda: speculative_decode(
                target,
                target_params,
                draft,
                draft_params,
                prompts,
                prompt_lengths,
                keys,
                gamma=config.gamma,
                **common,
            ),  # fmt: skip
        },
        config.repeats,
    )
    (ar_s, ar), (sd_s, sd) = timed["autoregressive"], timed["speculative"]
    summary = sd.summary()
    alpha = summary["alpha"]
    generated = np.asarray(sd.tokens)
    sequences, mask = packed_continuations(prompts, prompt_lengths, generated, sd.lengths)
    alpha_analytic = analytic_alpha(
        target, target_params, draft, draft_params, sequences, sampling, mask
    )
    predicted = theory.expected_speedup(alpha, config.gamma, cost_ratio)
    ar_tokens = int(np.asarray(ar.lengths).sum())
    speedup = (summary["generated_tokens"] / sd_s) / (ar_tokens / ar_s)
    return {
        "batch": config.batch,
        "gamma": config.gamma,
        "temperature": config.temperature,
        "max_new_tokens": config.max_new_tokens,
        "tokens_per_s_autoregressive": ar_tokens / ar_s,
        "tokens_per_s_speculative": summary["generated_tokens"] / sd_s,
        "speedup": speedup,
        "alpha_empirical": alpha,
        "alpha_analytic": alpha_analytic,
        "tokens_per_target_call": summary["tokens_per_target_call"],
        "tokens_per_target_call_theory": theory.expected_tokens_per_call(alpha, config.gamma),
        "c": cost_ratio,
        "predicted_speedup": predicted,
        "measured_over_predicted": speedup / predicted,
        "identical_greedy": bool(
            config.temperature == 0 and np.array_equal(np.asarray(ar.tokens), generated)
        ),
    }


def measure_rows(
    target, target_params, draft, draft_params, prompts, prompt_lengths, *, gamma: int,
    temperature: float, max_new_tokens: int, repeats: int = 3, eos_id=None, seed: int = 0,
) -> dict:  # fmt: skip
    """Both decoders on each prompt alone (batch 1: ``prompts`` [N, P], one padded width, so
    one compilation per decoder), timed as ``time_calls`` times (interleaved, median).

    speedup = (speculative tokens / speculative seconds) / (autoregressive tokens / seconds),
    each summed over the prompts; alpha from the speculative results (``core.stats``).
    """
    from spec_decode.core import stats
    from spec_decode.core.decoder import DecoderParams, SpeculativeDecoder

    sampling = SamplingConfig(temperature=temperature)
    common = dict(max_new_tokens=max_new_tokens, sampling=sampling, eos_id=eos_id)
    decoders = {
        "autoregressive": SpeculativeDecoder(target, **common),
        "speculative": SpeculativeDecoder(target, draft, gamma, **common),
    }
    params = DecoderParams(target_params, draft_params)
    seconds = {name: 0.0 for name in decoders}
    tokens = {name: 0 for name in decoders}
    results, identical = [], True
    for row in range(len(prompts)):
        batch = (jnp.asarray(prompts[row : row + 1]), jnp.asarray(prompt_lengths[row : row + 1]))
        keys = jax.random.fold_in(jax.random.key(seed), row)[None]
        timed = time_calls(
            {name: functools.partial(d.run, params, *batch, keys) for name, d in decoders.items()},
            repeats,
        )
        for name, (s, out) in timed.items():
            seconds[name] += s
            tokens[name] += int(np.asarray(out.lengths).sum())
        ar, sd = timed["autoregressive"][1], timed["speculative"][1]
        identical &= bool(np.array_equal(np.asarray(ar.tokens), np.asarray(sd.tokens)))
        results.append(sd)
    rate = {name: tokens[name] / seconds[name] for name in decoders}
    summary = stats.summarize(results)
    return {
        "prompts": len(prompts), "gamma": gamma, "temperature": temperature,
        "max_new_tokens": max_new_tokens, "repeats": repeats,
        "tokens_per_s_autoregressive": rate["autoregressive"],
        "tokens_per_s_speculative": rate["speculative"],
        "speedup": rate["speculative"] / rate["autoregressive"], "alpha": summary["alpha"],
        "tokens_per_target_call": summary["tokens_per_target_call"],
        "identical_greedy": temperature == 0 and identical,
    }  # fmt: skip
