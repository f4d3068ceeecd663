"""Held-out acceptance (empirical and analytic) and the cost ratio c of a draft."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from spec_decode import SamplingConfig, speculative_decode
from spec_decode.bench import analytic_alpha, measure_cost_ratio, packed_continuations


def acceptance(
    target, target_params, draft, draft_params, prompts, lengths, *, temperature: float,
    gamma: int = 5, new_tokens: int = 128, eos_id=None, seed: int = 0,
) -> dict:  # fmt: skip
    """alpha = accepted / examined drafts over held-out prompts, and the analytic mean of
    beta = sum_x min(p, q) over the positions that predicted generated tokens."""
    sampling = SamplingConfig(temperature=temperature)
    keys = jax.random.split(jax.random.key(seed), len(prompts))
    out = speculative_decode(
        target, target_params, draft, draft_params, jnp.asarray(prompts), jnp.asarray(lengths),
        keys, gamma=gamma, max_new_tokens=new_tokens, sampling=sampling, eos_id=eos_id,
    )  # fmt: skip
    summary = out.summary()
    sequences, mask = packed_continuations(prompts, lengths, out.tokens, out.lengths)
    summary["alpha_analytic"] = analytic_alpha(
        target, target_params, draft, draft_params, sequences, sampling, mask
    )
    rounds = np.asarray(out.accepted_per_round)
    taken = rounds[rounds >= 0]
    summary["accepted_at_position"] = [float((taken > i).mean()) for i in range(gamma)]
    return summary


def cost_ratio(target, target_params, draft, draft_params, batch: int = 1) -> dict:
    c, target_s, draft_s = measure_cost_ratio(target, target_params, draft, draft_params, batch)
    return {"c": c, "target_step_ms": 1e3 * target_s, "draft_step_ms": 1e3 * draft_s}
