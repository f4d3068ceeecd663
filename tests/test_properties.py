"""Properties over random shapes, vocabularies, dtypes and sampling settings (hypothesis).

- ``adjusted_probs``: finite, non-negative, sums to 1, zero where the logit is -inf, and the
  most likely token is a largest logit, for any temperature from 1e-45 to 1e4 (and 0).
- ``accept_reject``: ``num_accepted`` in [0, K], the next token in [0, V) and possible under
  p_{n+1}; every invalid input a ValueError naming the argument.
- both decoders (toy model, tiny sizes): every emitted token in [0, V), lengths in
  [1, max_new_tokens]; every invalid prompt a ValueError naming the argument.

Examples are few (each decoder example compiles) so that the file runs in a few minutes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from toy import ToyLM

from spec_decode import DecoderParams, SamplingConfig, SpeculativeDecoder, accept_reject
from spec_decode.core.sampling import adjusted_probs

FEW = settings(
    max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
FEWER = settings(
    max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)

temperatures = st.one_of(
    st.just(0.0),
    st.floats(-45, 4).map(lambda e: float(10.0**e)),  # log-uniform over 1e-45 .. 1e4
)


@st.composite
def sampling_configs(draw, vocab: int):
    return SamplingConfig(
        temperature=draw(temperatures),
        top_k=draw(st.integers(0, vocab + 2)),
        top_p=draw(st.one_of(st.just(1.0), st.floats(1e-3, 1.0))),
    )


@st.composite
def logits_cases(draw):
    vocab = draw(st.integers(1, 40))
    shape = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2))) + (vocab,)
    dtype = draw(st.sampled_from([jnp.float32, jnp.bfloat16, jnp.float16]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1e-3, 1.0, 30.0]))
    logits = rng.normal(size=shape) * scale
    # Some -inf logits (n-gram drafts), never a whole row of them.
    masked = rng.random(shape) < draw(st.sampled_from([0.0, 0.3]))
    masked[..., int(rng.integers(vocab))] = False
    logits = np.where(masked, -np.inf, logits)
    return jnp.asarray(logits, dtype), draw(sampling_configs(vocab))


@FEW
@given(logits_cases())
def test_adjusted_probs_are_distributions(case):
    logits, config = case
    probs = np.asarray(adjusted_probs(logits, config))
    as_f32 = np.asarray(logits.astype(jnp.float32))
    assert probs.dtype == np.float32 and probs.shape == logits.shape
    assert np.isfinite(probs).all() and (probs >= 0).all()
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    assert (probs[np.isneginf(as_f32)] == 0).all()
    # The most likely token is one with the largest logit (ties share the top probability).
    top = np.take_along_axis(probs, as_f32.argmax(-1)[..., None], -1)[..., 0]
    np.testing.assert_array_equal(top, probs.max(-1))


@st.composite
def rounds(draw):
    batch, k, vocab = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 10))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    sparse = draw(st.booleans())  # many exact zeros, as top-k / greedy give

    def dists(*shape):
        d = rng.dirichlet(np.ones(vocab) * (0.1 if sparse else 1.0), size=shape)
        return d.astype(np.float32)

    p, q = dists(batch, k + 1), dists(batch, k)
    x = rng.integers(0, vocab, (batch, k)).astype(np.int32)
    return p, q, x, int(rng.integers(2**31))


@FEW
@given(rounds())
def test_accept_reject_outputs_are_in_range(case):
    p, q, x, seed = case
    n, t = (np.asarray(a) for a in accept_reject(p, q, x, seed))
    batch, k = x.shape
    assert n.shape == t.shape == (batch,)
    assert ((0 <= n) & (n <= k)).all()
    assert ((0 <= t) & (t < p.shape[-1])).all()
    # The next token is drawn from the residual or from p_{n+1}: never where p_{n+1} is 0.
    assert (p[np.arange(batch), n, t] > 0).all()


CORRUPTIONS = ("nan", "inf", "negative", "scaled", "log", "id high", "id low", "float ids")


@FEW
@given(rounds(), st.sampled_from(CORRUPTIONS), st.sampled_from(["target_probs", "draft_probs"]))
def test_accept_reject_names_every_invalid_input(case, corruption, which):
    p, q, x, seed = case
    args = {"target_probs": p.copy(), "draft_probs": q.copy(), "draft_tokens": x.copy()}
    probs = args[which]
    name = which
    if corruption == "nan":
        probs[0, 0, 0] = np.nan
    elif corruption == "inf":
        probs[0, 0, -1] = np.inf
    elif corruption == "negative":
        probs[0, 0, 0] = -1e-3
    elif corruption == "scaled":
        args[which] = probs * np.float32(np.random.default_rng(seed).choice([0.01, 0.5, 2.0, 7.0]))
    elif corruption == "log":
        args[which] = np.log(probs + 1e-9)
    else:
        name = "draft_tokens"
        vocab = p.shape[-1]
        if corruption == "id high":
            args[name][0, -1] = vocab + seed % 5
        elif corruption == "id low":
            args[name][-1, 0] = -1 - seed % 5
        else:
            args[name] = x + 0.5
    with pytest.raises(ValueError, match=rf"^{name}\b.*not allowed"):
        accept_reject(args["target_probs"], args["draft_probs"], args["draft_tokens"], seed)


@st.composite
def decodes(draw):
    vocab = draw(st.integers(2, 12))
    batch, width = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    lengths = rng.integers(1, width + 1, batch).astype(np.int32)
    prompts = rng.integers(0, vocab, (batch, width)).astype(np.int32)
    prompts = np.where(np.arange(width) < lengths[:, None], prompts, 0)
    eos = draw(st.one_of(st.none(), st.integers(0, vocab - 1)))
    return dict(
        vocab=vocab, prompts=prompts, lengths=lengths, seed=int(rng.integers(2**31)),
        sampling=draw(sampling_configs(vocab)), gamma=draw(st.integers(1, 4)),
        max_new_tokens=draw(st.integers(1, 6)), eos_id=eos,
    )  # fmt: skip


def _models(vocab: int, seed: int):
    target, draft = ToyLM(vocab), ToyLM(vocab)
    return (
        target,
        draft,
        DecoderParams(target.init(jax.random.key(seed)), draft.init(jax.random.key(seed + 1))),
    )


@FEWER
@given(decodes(), st.booleans())
def test_decoders_emit_only_valid_tokens(case, with_draft):
    target, draft, params = _models(case["vocab"], case["seed"] % 1000)
    decoder = SpeculativeDecoder(
        target, draft if with_draft else None, case["gamma"] if with_draft else None,
        max_new_tokens=case["max_new_tokens"], sampling=case["sampling"], eos_id=case["eos_id"],
    )  # fmt: skip
    result = decoder.run(params, case["prompts"], case["lengths"], case["seed"])
    tokens, lengths = np.asarray(result.tokens), np.asarray(result.lengths)
    assert ((1 <= lengths) & (lengths <= case["max_new_tokens"])).all()
    assert ((0 <= tokens) & (tokens < case["vocab"])).all()


PROMPT_CORRUPTIONS = ("id high", "id low", "float", "length 0", "length > P", "lengths shape")


@FEW
@given(decodes(), st.sampled_from(PROMPT_CORRUPTIONS))
def test_decoders_name_every_invalid_prompt(case, corruption):
    target, draft, params = _models(case["vocab"], 0)
    decoder = SpeculativeDecoder(target, draft, 2, max_new_tokens=2)
    prompts, lengths = case["prompts"].copy(), case["lengths"].copy()
    name = "prompt_tokens"
    if corruption == "id high":
        prompts[-1, -1] = case["vocab"] + case["seed"] % 7
    elif corruption == "id low":
        prompts[0, 0] = -1
    elif corruption == "float":
        prompts = prompts + 0.25
    else:
        name = "prompt_lengths"
        if corruption == "length 0":
            lengths[0] = 0
        elif corruption == "length > P":
            lengths[-1] = prompts.shape[1] + 1
        else:
            lengths = np.append(lengths, 1)
    with pytest.raises(ValueError, match=rf"^{name}\b.*not allowed"):
        decoder.run(params, prompts, lengths, 0)


invalid_temperatures = st.one_of(
    st.floats(max_value=-1e-45), st.just(float("inf")), st.just(float("nan")),
    st.text(max_size=3), st.booleans(), st.none(),
)  # fmt: skip
invalid_top_k = st.one_of(st.integers(max_value=-1), st.floats(allow_nan=True), st.booleans())
invalid_top_p = st.one_of(
    st.floats(max_value=0.0), st.floats(min_value=1.0, exclude_min=True), st.just(float("nan"))
)


@FEW
@given(st.sampled_from(["temperature", "top_k", "top_p"]), st.data())
def test_sampling_config_names_every_invalid_setting(name, data):
    value = data.draw({"temperature": invalid_temperatures, "top_k": invalid_top_k,
                       "top_p": invalid_top_p}[name])  # fmt: skip
    with pytest.raises(ValueError, match=rf"^{name}=.* is not allowed"):
        SamplingConfig(**{name: value})


@FEW
@given(
    st.sampled_from([np.float16, np.float32, np.float64, jnp.float32, jnp.bfloat16]),
    st.sampled_from([np.int8, np.int32, np.uint16, np.int64, jnp.int32]),
    temperatures,
)
def test_sampling_config_takes_any_numeric_type(float_type, int_type, temperature):
    temperature = min(temperature, 1e4)
    config = SamplingConfig(float_type(temperature), int_type(3), float_type(0.5))
    assert (type(config.temperature), type(config.top_k), type(config.top_p)) == (float, int, float)
    assert config == SamplingConfig(config.temperature, 3, config.top_p)
    assert np.isfinite(config.temperature) and config.temperature >= 0
