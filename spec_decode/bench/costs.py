"""Measuring what a round costs, for the run-time gamma policy (``core.policy.RoundCosts``).

Each figure is an in-loop time: ``steps`` calls of ``extend`` inside one jitted ``fori_loop``,
each call rolled back so the cache keeps one length, timed as a whole and divided by ``steps``.
That is what a call costs inside the decoder's while loop; timing single jitted calls instead
adds the host's dispatch to every call and overstates a small draft's cost. A whole round
(``round_seconds``) is timed the same way: ``rounds`` rounds of the decoder's own ``round`` in
one jitted while loop, rows never finishing, so bookkeeping and the loop's own cost are in it.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from spec_decode.bench.measure import time_call
from spec_decode.core.contract import rollback
from spec_decode.core.decoder import DecoderParams, SpeculativeDecoder
from spec_decode.core.policy import GammaPolicy, RoundCosts
from spec_decode.core.sampling import SamplingConfig


def in_loop_seconds(
    model, params, batch: int, tokens: int, context: int = 64, steps: int = 32, repeats: int = 5
) -> float:
    """Seconds of one ``extend`` of ``tokens`` [B, K] after ``context`` cached positions."""
    cache = model.init_cache(params, batch, context + tokens + 1)
    _, cache = jax.jit(model.extend)(params, jnp.full((batch, context), 3, jnp.int32), cache)
    block = jnp.full((batch, tokens), 3, jnp.int32)

    @functools.partial(jax.jit, donate_argnums=1)
    def run(params, cache):
        lengths = cache.lengths

        def body(_, cache):
            logits, cache = model.extend(params, block, cache)
            # Depend on the logits, so that the output layer is not optimised away.
            cache = rollback(cache, lengths + (jnp.argmax(logits[:, -1], -1) < 0))
            return cache

        return jax.lax.fori_loop(0, steps, body, cache)

    state = {"cache": cache}

    def call():
        state["cache"] = run(params, state["cache"])
        return state["cache"].lengths

    seconds, _ = time_call(call, repeats)
    return seconds / steps


@functools.partial(jax.jit, static_argnums=0)
def _rounds(decoder: SpeculativeDecoder, params, state, count):
    end = state.rounds + count  # traced: a while loop like the decoder's, one check per round
    return jax.lax.while_loop(
        lambda state: state.rounds < end, functools.partial(decoder.round, params), state
    )


def round_seconds(
    target, target_params, draft, draft_params, *, batch: int, gamma: int,
    sampling: SamplingConfig = SamplingConfig(), context: int = 64, rounds: int = 16,
    repeats: int = 5,
) -> float:  # fmt: skip
    """Seconds of one round with ``gamma`` drafts (0: a plain step, no draft) in the loop."""
    with_draft = gamma > 0
    decoder = SpeculativeDecoder(
        target, draft if with_draft else None, gamma if with_draft else None,
        max_new_tokens=rounds * (gamma + 1) + 1, sampling=sampling,
    )  # fmt: skip
    params = DecoderParams(target_params, draft_params if with_draft else None)
    state = decoder.init(params, jnp.full((batch, context), 3, jnp.int32), key=0)
    count = jnp.int32(rounds)
    seconds, _ = time_call(lambda: _rounds(decoder, params, state, count).rounds, repeats)
    return seconds / rounds


def measure_round_costs(
    target, target_params, draft, draft_params, *, batch: int, max_gamma: int, context: int = 64,
    sampling: SamplingConfig = SamplingConfig(), whole_rounds: bool = True,
) -> RoundCosts:  # fmt: skip
    """c and v(0..max_gamma) at this batch size, relative to a 1-token target call; with
    ``whole_rounds`` also R(0..max_gamma), each round as the decoder runs it with ``sampling``."""
    step = functools.partial(in_loop_seconds, batch=batch, context=context)
    verify = [step(target, target_params, tokens=k + 1) for k in range(max_gamma + 1)]
    draft_step = step(draft, draft_params, tokens=1)
    per_round = None
    if whole_rounds:
        one_round = functools.partial(
            round_seconds, target, target_params, draft, draft_params, batch=batch,
            sampling=sampling, context=context,
        )  # fmt: skip
        per_round = tuple(one_round(gamma=g) for g in range(max_gamma + 1))
    return RoundCosts(draft=draft_step / verify[0], verify=tuple(verify), rounds=per_round)


_POLICIES: dict = {}


def auto_policy(
    target, target_params, draft, draft_params, *, batch: int, max_gamma: int = 6,
    sampling: SamplingConfig = SamplingConfig(), **kwargs,
) -> GammaPolicy:  # fmt: skip
    """A ``GammaPolicy`` over costs measured here, once per (models, batch, max_gamma, sampling).

    Costs depend on shapes, not on weight values, so later calls with other params of the same
    models reuse the measurement. ``kwargs`` go to ``GammaPolicy`` (prior, probe interval).
    """
    key = (target, draft, batch, max_gamma, sampling.greedy)
    if key not in _POLICIES:
        _POLICIES[key] = measure_round_costs(
            target, target_params, draft, draft_params, batch=batch, max_gamma=max_gamma,
            sampling=sampling,
        )  # fmt: skip
    return GammaPolicy(_POLICIES[key], **kwargs)
