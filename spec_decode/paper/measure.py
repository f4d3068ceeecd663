"""Measuring a trained T5 target and its drafts on a task's test inputs (Tables 2 and 3).

Every decode is ours: ``speculative_decode`` and, as the baseline, ``autoregressive_decode``,
the same jitted loop, prefill and stopping, on the same machine. For one temperature and gamma
the test inputs [N, S] are decoded in fixed batches [B, S] (one compilation; N is cut to a
multiple of B); one untimed pass over the first batch compiles and warms up, then ``repeats``
timed passes over all of them give the median seconds. alpha and tokens per target call come
from ``core.stats.summarize`` over every batch of a pass (one definition of alpha), and

    speedup   = (speculative tokens / s) / (autoregressive tokens / s)
    expected  = Theorem 3.8 at the measured alpha, this gamma and the measured c
    ratio     = speedup / expected

c is ``bench.measure_cost_ratio``: one jitted draft step over one target step (K = 1, B rows).

A worked record (T = 0, gamma 3): 128 inputs, 7,424 tokens, alpha 0.60, 2.18 tokens per target
call; c 0.05; autoregressive 410 tokens/s, speculative 720: speedup 1.76, expected
2.18 / 1.15 = 1.89, ratio 0.93.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from spec_decode.bench import measure_cost_ratio
from spec_decode.core import stats, theory
from spec_decode.core.functional import autoregressive_decode, speculative_decode
from spec_decode.core.sampling import SamplingConfig
from spec_decode.models.t5 import T5Decoding, make_t5_inputs

EOS_ID = 1


def encoder_batches(encoder_tokens: np.ndarray, batch: int) -> list[np.ndarray]:
    """Inputs [N, S] -> N // B batches [B, S] (the rest dropped, so every call has one shape)."""
    tokens = np.asarray(encoder_tokens, np.int32)
    if tokens.ndim != 2 or len(tokens) < batch:
        raise ValueError(
            f"encoder_tokens of shape {tokens.shape} is not allowed: it must be [N, S] with "
            f"N >= batch={batch}"
        )
    count = len(tokens) // batch
    return [tokens[i * batch : (i + 1) * batch] for i in range(count)]


def _decode_pass(target: T5Decoding, target_params, draft, draft_params, *,
                 gamma: int | None, temperature: float, max_new_tokens: int, seed: int,
                 eos_id: int = EOS_ID) -> Callable[[Sequence[np.ndarray]], list]:  # fmt: skip
    """A function decoding the given batches (speculative with a draft, else autoregressive)."""
    sampling = SamplingConfig(temperature=float(temperature))

    def run(which: Sequence[np.ndarray]) -> list:
        results = []
        for index, tokens in enumerate(which):
            inputs = make_t5_inputs(target_params, tokens)  # [B, S]
            prompt = jnp.zeros((len(tokens), 1), jnp.int32)  # T5's BOS is 0
            keys = jax.random.split(jax.random.fold_in(jax.random.key(seed), index), len(tokens))
            common = dict(max_new_tokens=max_new_tokens, sampling=sampling, eos_id=eos_id)
            if draft is None:
                result = autoregressive_decode(target, inputs, prompt, None, keys, **common)
            else:
                if isinstance(draft, T5Decoding):
                    params = make_t5_inputs(draft_params, tokens)
                else:
                    params = draft_params
                result = speculative_decode(
                    target, inputs, draft, params, prompt, None, keys, gamma=gamma, **common
                )
            results.append(jax.block_until_ready(result))
        return results

    return run


def timed_decode(target, target_params, draft, draft_params, batches, *, gamma, temperature,
                 max_new_tokens, repeats, seed=0) -> dict[str, Any]:  # fmt: skip
    """Median seconds of ``repeats`` passes over ``batches`` after a warm-up, and the statistics.

    Returns {'seconds', 'generated_tokens', 'tokens_per_s', 'alpha', 'tokens_per_target_call',
    'results'} ('results': the last pass's ``DecodeResult``s, one per batch).
    """
    run = _decode_pass(
        target, target_params, draft, draft_params, gamma=gamma, temperature=temperature,
        max_new_tokens=max_new_tokens, seed=seed,
    )  # fmt: skip
    run(batches[:1])  # compiles; excluded from the timing
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        results = run(batches)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    summary = stats.summarize(results)
    generated = summary["generated_tokens"]
    return {
        "seconds": seconds,
        "generated_tokens": generated,
        "tokens_per_s": generated / seconds,
        "alpha": summary["alpha"],
        "tokens_per_target_call": summary["tokens_per_target_call"],
        "results": results,
    }


def measure_baseline(target, target_params, batches, *, temperature, max_new_tokens, repeats,
                     seed=0) -> dict[str, Any]:  # fmt: skip
    """The autoregressive decoder's seconds and tokens per second at one temperature."""
    record = timed_decode(target, target_params, None, None, batches, gamma=None,
                          temperature=temperature, max_new_tokens=max_new_tokens,
                          repeats=repeats, seed=seed)  # fmt: skip
    record.pop("results")
    return {"temperature": float(temperature), **record}


def cost_ratio(target, target_params, draft, draft_params, tokens: np.ndarray,
               repeats: int = 20) -> float:  # fmt: skip
    """c: ``bench.measure_cost_ratio`` at the batch of the encoder ``tokens`` [B, S] (a T5
    model's params carry its source)."""
    if isinstance(draft, T5Decoding):
        draft_params = make_t5_inputs(draft_params, tokens)
    target_params = make_t5_inputs(target_params, tokens)
    return float(measure_cost_ratio(target, target_params, draft, draft_params, len(tokens),
                                    repeats)[0])  # fmt: skip


def measure_draft(target, target_params, draft, draft_params, batches, baselines, *, gammas,
                  temperatures, max_new_tokens, repeats, seed=0,
                  progress: bool = True) -> dict[str, Any]:  # fmt: skip
    """One draft against the target: c, then one run per (temperature, gamma).

    ``baselines`` maps temperature -> ``measure_baseline``'s record. Each run: alpha, tokens
    per target call (measured and (1 - alpha^(gamma+1)) / (1 - alpha)), tokens per second,
    the speedup, Theorem 3.8's expected speedup and measured / expected.
    """
    c = cost_ratio(target, target_params, draft, draft_params, batches[0])
    runs = []
    cells = [(t, g) for t in temperatures for g in gammas]
    for temperature, gamma in tqdm(cells, desc="measure", disable=not progress, leave=False):
        record = timed_decode(target, target_params, draft, draft_params, batches, gamma=gamma,
                              temperature=temperature, max_new_tokens=max_new_tokens,
                              repeats=repeats, seed=seed)  # fmt: skip
        record.pop("results")
        runs.append(run_record(record, baselines[float(temperature)], temperature, gamma, c))
    return {"c": c, "runs": runs}


def run_record(record: dict, baseline: dict, temperature: float, gamma: int, c: float) -> dict:
    """One (temperature, gamma) cell of a draft, with the theory beside the measurement."""
    alpha = record["alpha"]
    speedup = record["tokens_per_s"] / baseline["tokens_per_s"]
    expected = None if alpha is None else theory.expected_speedup(alpha, gamma, c)
    calls = None if alpha is None else theory.expected_tokens_per_call(alpha, gamma)
    return {
        "temperature": float(temperature),
        "gamma": int(gamma),
        "alpha": alpha,
        "tokens_per_target_call": record["tokens_per_target_call"],
        "tokens_per_target_call_theory": calls,
        "tokens_per_s": record["tokens_per_s"],
        "speedup": speedup,
        "expected_speedup": expected,
        "measured_over_expected": None if not expected else speedup / expected,
        "c": c,
    }


def greedy_equality(target, target_params, draft, draft_params, batches, *, gamma,
                    max_new_tokens) -> dict[str, Any]:  # fmt: skip
    """Greedy speculative vs greedy autoregressive, token for token, in float32.

    The models should be float32 ones (``float32_models``); matmuls run at full precision so
    that the K + 1 verified positions and one-at-a-time steps agree. Returns the rows compared,
    the rows whose tokens and lengths are identical, and ``identical`` (all of them).
    """
    common = dict(temperature=0.0, max_new_tokens=max_new_tokens, seed=0)
    # On CPUs float32 matmuls are already full precision; elsewhere (TF32 on GPUs) ask for it.
    # The context is part of jit's cache key, so on CPUs leaving it out reuses the T=0 decodes.
    precision = "highest" if jax.default_backend() != "cpu" else None
    with jax.default_matmul_precision(precision):
        plain = _decode_pass(target, target_params, None, None, gamma=None, **common)
        spec = _decode_pass(target, target_params, draft, draft_params, gamma=gamma,
                            **common)  # fmt: skip
        equal = rows = 0
        for a, b in zip(plain(batches), spec(batches), strict=True):
            same_len = np.asarray(a.lengths) == np.asarray(b.lengths)
            same_tok = np.all(np.asarray(a.tokens) == np.asarray(b.tokens), axis=1)
            equal += int(np.sum(same_len & same_tok))
            rows += len(same_len)
    return {"gamma": int(gamma), "rows": rows, "rows_identical": equal, "identical": equal == rows}


def float32_model(model: T5Decoding) -> T5Decoding:
    """The same T5 with float32 activations (for the greedy equality check)."""
    import dataclasses

    return T5Decoding(dataclasses.replace(model.config, dtype="float32"))


def best_run(runs: Sequence[dict], temperature: float) -> dict | None:
    """The run of the highest measured speedup at ``temperature`` (Table 2's best gamma)."""
    candidates = [r for r in runs if r["temperature"] == float(temperature)]
    return max(candidates, key=lambda r: r["speedup"]) if candidates else None
