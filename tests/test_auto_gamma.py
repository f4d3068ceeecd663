"""Run-time gamma: any policy that looks only at earlier rounds keeps decoding exact.

Two policies drive the same loop: the shipped ``GammaPolicy`` (its choice follows the alpha
estimate and the costs) and a scripted one whose gamma sequence has runs of plain steps
(gamma 0), so the draft falls several tokens behind and is caught up in chunks. Exactness is
tested the way tests/test_distribution.py tests fixed gamma: the joint distribution of the first
3 tokens (125 cells, 40,000 rows) against autoregressive sampling (two-sample: detects a TV error
of 0.042 with probability 0.99 at significance 1e-3) and against the exact target distribution
(detects 0.030 likewise); greedy decoding must equal the target's own greedy tokens.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from stats import SIGNIFICANCE, detectable_tv, goodness_of_fit, two_sample
from test_distribution import (
    DRAFT,
    DRAFT_PARAMS,
    NEW,
    PROMPT,
    PROMPT_LENGTH,
    SETTINGS,
    TARGET,
    TARGET_PARAMS,
    V,
    _counts,
    _exact_joint,
)

from spec_decode import DecoderParams, SamplingConfig, SpeculativeDecoder, autoregressive_decode
from spec_decode.core.policy import GammaPolicy, RoundCosts
from spec_decode.models import tiny_llama

N = 40_000
COSTS = RoundCosts(draft=0.05, verify=(1.0, 1.02, 1.04, 1.08))


@dataclasses.dataclass(frozen=True)
class ScriptedPolicy(GammaPolicy):
    """Round r uses script[r % len(script)]: a function of the round count only."""

    script: tuple[int, ...] = (0,)

    def choose(self, accepted_per_round, gamma_per_round, rounds):
        return jnp.asarray(self.script, jnp.int32)[rounds % len(self.script)]

    def hold(self, gamma, gamma_per_round, rounds):
        return jnp.int32(1)  # a choice per round: the script, round for round


POLICIES = {
    "measured": GammaPolicy(COSTS),
    "scripted_0_0_2": ScriptedPolicy(COSTS, script=(0, 0, 2)),
}


@pytest.mark.parametrize("policy", list(POLICIES))
@pytest.mark.parametrize("name", list(SETTINGS))
def test_first_three_tokens_follow_the_target(name, policy):
    sampling = SETTINGS[name]
    prompts = jnp.repeat(PROMPT, N, axis=0)
    lengths = jnp.full((N,), PROMPT_LENGTH)
    decoder = SpeculativeDecoder(
        TARGET, DRAFT, "auto", max_new_tokens=NEW, sampling=sampling, policy=POLICIES[policy]
    )
    spec = decoder.run(
        DecoderParams(TARGET_PARAMS, DRAFT_PARAMS), prompts, lengths, jax.random.key(1)
    )
    plain = autoregressive_decode(
        TARGET, TARGET_PARAMS, prompts, lengths, jax.random.key(2), max_new_tokens=NEW,
        sampling=sampling,
    )  # fmt: skip
    gammas = np.asarray(spec.gamma_per_round)
    assert (gammas[gammas >= 0] > 0).any(), gammas  # some round drafted
    if policy == "scripted_0_0_2":
        assert gammas.tolist() == [0, 0, 2]  # the third round catches the draft up two tokens
        assert spec.summary()["accepted_tokens"] > 0.2 * N
    assert detectable_tv(N, V**NEW - 1, two_sample=True) < 0.042
    assert detectable_tv(N, V**NEW - 1) < 0.030
    assert two_sample(_counts(spec), _counts(plain)) > SIGNIFICANCE
    assert goodness_of_fit(_counts(spec), _exact_joint(sampling)) > SIGNIFICANCE


GREEDY_SCRIPTS = [(0,) * 9 + (3,), (2, 0, 1, 0, 0, 3), (3,), (0,)]


@pytest.mark.parametrize("script", GREEDY_SCRIPTS)
def test_greedy_auto_equals_the_target_alone(script):
    """float32 tiny Llamas, ragged prompts (lengths 1..6), EOS, batch 5."""
    target, t_params = tiny_llama(3, seed=0, vocab_size=48, max_length=128)
    draft, d_params = tiny_llama(1, seed=1, vocab_size=48, max_length=128)
    rng = np.random.default_rng(0)
    lengths = np.array([1, 6, 3, 2, 5])
    prompts = np.where(np.arange(6) < lengths[:, None], rng.integers(2, 48, (5, 6)), 0)
    greedy = SamplingConfig(temperature=0.0)
    want = autoregressive_decode(target, t_params, prompts, lengths, max_new_tokens=40,
                                 sampling=greedy, eos_id=1)  # fmt: skip
    for policy in (ScriptedPolicy(COSTS, script=script), GammaPolicy(COSTS)):
        decoder = SpeculativeDecoder(
            target, draft, "auto", max_new_tokens=40, sampling=greedy, eos_id=1, policy=policy
        )
        got = decoder.run(DecoderParams(t_params, d_params), prompts, lengths)
        np.testing.assert_array_equal(got.tokens, want.tokens)
        np.testing.assert_array_equal(got.lengths, want.lengths)
        stream = decoder.stream(DecoderParams(t_params, d_params), prompts, lengths)
        for _ in stream:
            pass
        np.testing.assert_array_equal(stream.result().tokens, want.tokens)
        summary = got.summary()
        assert sum(summary["acceptance_histogram"]) == summary["rounds"]


def test_a_useless_draft_is_switched_off_and_probed():
    """A random draft (alpha ~ 0): after a few rounds only plain steps, and a g=1 probe every
    probe_every rounds."""
    target, t_params = tiny_llama(2, seed=0, vocab_size=64, max_length=256)
    draft, d_params = tiny_llama(1, seed=9, vocab_size=64, max_length=256)
    costs = RoundCosts(draft=0.2, verify=(1.0, 1.1, 1.2, 1.3))
    policy = GammaPolicy(costs, probe_every=16, first_probe=16)  # a fixed interval
    decoder = SpeculativeDecoder(
        target, draft, "auto", max_new_tokens=120, sampling=SamplingConfig(temperature=0.0),
        policy=policy,
    )  # fmt: skip
    result = decoder.run(DecoderParams(t_params, d_params), jnp.array([[3, 4, 5]]))
    gammas = np.asarray(result.gamma_per_round)
    gammas = gammas[gammas >= 0]
    assert result.summary()["alpha"] < 0.2
    drafting = np.nonzero(gammas)[0]
    hopeful = int(np.argmin(gammas > 0))  # the leading run of drafting rounds (the prior's)
    assert drafting[0] == 0 and 1 <= hopeful <= 10, gammas
    probes = drafting[drafting >= hopeful]
    assert len(probes) >= 3 and (gammas[probes] == 1).all()
    assert (np.diff(probes) == policy.probe_every + 1).all(), probes


def test_a_good_draft_keeps_drafting():
    """The target as its own draft (alpha = 1): the policy settles on the largest gamma."""
    target, t_params = tiny_llama(2, seed=0, vocab_size=64, max_length=256)
    decoder = SpeculativeDecoder(
        target, target, "auto", max_new_tokens=60, sampling=SamplingConfig(temperature=0.0),
        policy=GammaPolicy(COSTS),
    )  # fmt: skip
    result = decoder.run(DecoderParams(t_params, t_params), jnp.array([[3, 4, 5]]))
    gammas = np.asarray(result.gamma_per_round)
    gammas = gammas[gammas >= 0]
    assert gammas[0] >= 1 and (gammas[1:] == COSTS.max_gamma).all(), gammas
    assert result.summary()["alpha"] == 1.0


def test_policy_arithmetic_matches_the_docstring_example():
    policy = GammaPolicy(RoundCosts(draft=0.1, verify=(1.0, 1.05, 1.1, 1.2)))
    speed = np.asarray(policy.speed(jnp.float32(0.6)))
    np.testing.assert_allclose(speed, [1.0, 1.6 / 1.15, 1.96 / 1.3, 2.176 / 1.5], rtol=1e-5)
    assert int(np.argmax(speed)) == 2


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(draft=None, gamma="auto", policy=GammaPolicy(COSTS)), r"without a draft"),
        (dict(draft=DRAFT, gamma="auto"), r"policy=None is not allowed with gamma='auto'"),
        (dict(draft=DRAFT, gamma=2, policy=GammaPolicy(COSTS)), r"goes with gamma='auto'"),
    ],
)
def test_auto_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        SpeculativeDecoder(TARGET, **kwargs)


def test_costs_are_checked():
    with pytest.raises(ValueError, match="verify=.*not allowed"):
        RoundCosts(draft=0.1, verify=(1.0,))
    with pytest.raises(ValueError, match="draft=-1 is not allowed"):
        RoundCosts(draft=-1, verify=(1.0, 1.1))
    assert RoundCosts(draft=0.1, verify=(2.0, 3.0)).verify == (1.0, 1.5)  # relative to v(0)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_a_constant_policy_is_fixed_gamma_round_for_round(temperature):
    """The run-time machinery (switch, catch-up bookkeeping) changes nothing by itself."""
    target, t_params = tiny_llama(3, seed=0, vocab_size=48, max_length=128)
    draft, d_params = tiny_llama(1, seed=1, vocab_size=48, max_length=128)
    lengths = np.array([1, 6, 3, 2, 5])
    rng = np.random.default_rng(0)
    prompts = np.where(np.arange(6) < lengths[:, None], rng.integers(2, 48, (5, 6)), 0)
    common = dict(max_new_tokens=30, sampling=SamplingConfig(temperature=temperature))
    params, key = DecoderParams(t_params, d_params), jax.random.key(3)
    fixed = SpeculativeDecoder(target, draft, 2, **common).run(params, prompts, lengths, key)
    policy = ScriptedPolicy(COSTS, script=(2,))
    auto = SpeculativeDecoder(target, draft, "auto", policy=policy, **common)
    auto = auto.run(params, prompts, lengths, key)
    for name in ("tokens", "lengths", "accepted_per_round", "target_calls", "draft_calls"):
        np.testing.assert_array_equal(getattr(auto, name), getattr(fixed, name), name)
    assert auto.summary()["alpha"] == fixed.summary()["alpha"]


def _hold(policy, gammas, gamma, length=40):
    record = jnp.asarray(list(gammas) + [-1] * (length - len(gammas)), jnp.int32)
    return int(policy.hold(jnp.int32(gamma), record, jnp.int32(len(gammas))))


def test_a_drafting_choice_holds_as_long_as_the_drafting_run_so_far():
    """Stretches of 1, 1, 2, 4, 8, 8 drafting rounds; a probe after plain steps holds one."""
    policy = GammaPolicy(COSTS, max_hold=8, probe_every=16)
    gammas, stretches = [], []
    while len(gammas) < 31:
        hold = _hold(policy, gammas, 2)
        stretches.append(hold)
        gammas += [2] * hold
    assert stretches == [1, 1, 2, 4, 8, 8, 8]
    assert _hold(policy, [2] * 5 + [0] * 16, 1) == 1  # the probe
    assert _hold(policy, [2] * 5 + [0] * 16 + [1], 1) == 1


def test_plain_steps_hold_until_the_next_probe():
    policy = GammaPolicy(COSTS, probe_every=16, first_probe=16)
    assert _hold(policy, [], 0) == 16
    assert _hold(policy, [3, 3], 0) == 16
    assert _hold(policy, [3, 3] + [0] * 5, 0) == 11
    assert _hold(policy, [3] + [0] * 30, 0) == 1  # overdue: never zero rounds


def test_probes_back_off_from_first_probe_to_probe_every():
    """A useless draft: plain runs of 8, 8, 16, 32, 64, 64 between g = 1 probes."""
    policy = GammaPolicy(COSTS, probe_every=64, first_probe=8)
    gammas, runs = [2, 2], []
    while len(gammas) < 300:
        run = _hold(policy, gammas, 0, length=400)
        runs.append(run)
        gammas += [0] * run + [1]
    assert runs[:6] == [8, 8, 16, 32, 64, 64], runs
    with pytest.raises(ValueError, match="first_probe=9 is not allowed"):
        GammaPolicy(COSTS, probe_every=8, first_probe=9)


def test_measured_whole_rounds_replace_the_parts():
    parts = RoundCosts(draft=0.1, verify=(1.0, 1.1, 1.2))
    assert parts.per_round == pytest.approx((1.0, 1.2, 1.4))
    measured = RoundCosts(draft=0.1, verify=(1.0, 1.1, 1.2), rounds=(2.0, 3.0, 5.0))
    assert measured.per_round == (1.0, 1.5, 2.5)
    speed = np.asarray(GammaPolicy(measured).speed(jnp.float32(0.5)))
    np.testing.assert_allclose(speed, [1.0, 1.5 / 1.5, 1.75 / 2.5], rtol=1e-6)
    with pytest.raises(ValueError, match=r"rounds=\(1.0, 2.0\) is not allowed"):
        RoundCosts(draft=0.1, verify=(1.0, 1.1, 1.2), rounds=(1.0, 2.0))
    with pytest.raises(ValueError, match="max_hold=0 is not allowed"):
        GammaPolicy(COSTS, max_hold=0)


def test_round_costs_are_measured_in_the_loop():
    """Whole rounds of tiny models: R(0) = 1 and every R(g) a positive finite ratio."""
    from spec_decode.bench.costs import measure_round_costs

    target, t_params = tiny_llama(2, seed=0, vocab_size=48, max_length=256)
    draft, d_params = tiny_llama(1, seed=1, vocab_size=48, max_length=256)
    costs = measure_round_costs(target, t_params, draft, d_params, batch=2, max_gamma=2)
    assert costs.rounds is not None and costs.rounds[0] == 1.0
    assert len(costs.rounds) == 3 and all(0 < r < 1e3 for r in costs.rounds)


def test_acceptance_is_estimated_by_position():
    """Rounds at gamma 2 accepting 0, 2, 1: position 1 kept 2 of 3, position 2 kept 1 of 2;
    position 3 was never reached and takes position 2's rate."""
    policy = GammaPolicy(COSTS, prior_alpha=0.5, prior_weight=2.0)
    accepted = jnp.array([[0, 2, 1, -1]])
    gammas = jnp.array([2, 2, 2, -1])
    a1 = (2 + 2 * 0.5) / (3 + 2)
    a2 = (1 + 2 * a1) / (2 + 2)
    rates = np.asarray(policy.acceptance_rates(accepted, gammas))
    np.testing.assert_allclose(rates, [a1, a2, a2], rtol=1e-6)
    tokens = np.array([1, 1 + a1, 1 + a1 + a1 * a2, 1 + a1 + a1 * a2 + a1 * a2 * a2])
    want = tokens / np.asarray(COSTS.per_round)
    np.testing.assert_allclose(policy.speed(jnp.asarray(rates)), want, rtol=1e-6)
