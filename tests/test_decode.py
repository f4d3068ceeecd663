"""The while-loop decoders against the Python reference, per-row semantics and stopping."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from toy import ToyLM

from spec_decode import SamplingConfig, autoregressive_decode, speculative_decode
from spec_decode.core.reference import reference_autoregressive_decode, reference_speculative_decode

V = 12
TARGET, DRAFT = ToyLM(V), ToyLM(V)
TARGET_PARAMS = TARGET.init(jax.random.key(1))
# A draft near the target, so rounds see every number of acceptances.
DRAFT_PARAMS = jax.tree.map(lambda a, b: a + 0.7 * b, TARGET_PARAMS, DRAFT.init(jax.random.key(2)))
PROMPTS = jnp.array([[3, 4, 5, 6, 7], [7, 8, 0, 0, 0], [1, 0, 0, 0, 0], [2, 9, 9, 4, 0]])
LENGTHS = jnp.array([5, 2, 1, 4])
KEYS = jax.random.split(jax.random.key(42), 4)
SAMPLINGS = {
    "greedy": SamplingConfig(temperature=0.0),
    "t1": SamplingConfig(temperature=1.0),
    "topk": SamplingConfig(temperature=0.8, top_k=3),
    "topp": SamplingConfig(temperature=1.2, top_p=0.7),
}


def _rows(result):
    tokens, lengths = np.asarray(result.tokens), np.asarray(result.lengths)
    return [tokens[b, : lengths[b]].tolist() for b in range(tokens.shape[0])]


@pytest.mark.parametrize("name", list(SAMPLINGS))
@pytest.mark.parametrize("gamma", [1, 3])
def test_while_loop_equals_python_reference(name, gamma):
    """Same seeds, same tokens and same per-round acceptances as the plain Python loop."""
    sampling = SAMPLINGS[name]
    result = speculative_decode(
        TARGET, TARGET_PARAMS, DRAFT, DRAFT_PARAMS, PROMPTS, LENGTHS, KEYS,
        gamma=gamma, max_new_tokens=9, sampling=sampling, eos_id=11,
    )  # fmt: skip
    accepted = np.asarray(result.accepted_per_round)
    for b, row in enumerate(_rows(result)):
        prompt = PROMPTS[b, : LENGTHS[b]].tolist()
        tokens, rounds = reference_speculative_decode(
            TARGET, TARGET_PARAMS, DRAFT, DRAFT_PARAMS, prompt, KEYS[b],
            gamma=gamma, max_new_tokens=9, sampling=sampling, eos_id=11,
        )  # fmt: skip
        assert row == tokens
        assert accepted[b][accepted[b] >= 0].tolist() == rounds


@pytest.mark.parametrize("name", ["greedy", "topp"])
def test_autoregressive_equals_python_reference(name):
    result = autoregressive_decode(
        TARGET, TARGET_PARAMS, PROMPTS, LENGTHS, KEYS, max_new_tokens=7,
        sampling=SAMPLINGS[name], eos_id=11,
    )  # fmt: skip
    for b, row in enumerate(_rows(result)):
        prompt = PROMPTS[b, : LENGTHS[b]].tolist()
        expected = reference_autoregressive_decode(
            TARGET, TARGET_PARAMS, prompt, KEYS[b], max_new_tokens=7, sampling=SAMPLINGS[name],
            eos_id=11,
        )  # fmt: skip
        assert row == expected


@pytest.mark.parametrize("gamma", [1, 2, 5])
def test_greedy_speculative_equals_greedy_target(gamma):
    """Argmax: token for token what the target alone produces, ragged prompts, any gamma."""
    greedy = SAMPLINGS["greedy"]
    spec = speculative_decode(
        TARGET, TARGET_PARAMS, DRAFT, DRAFT_PARAMS, PROMPTS, LENGTHS, KEYS,
        gamma=gamma, max_new_tokens=15, sampling=greedy,
    )  # fmt: skip
    plain = autoregressive_decode(
        TARGET, TARGET_PARAMS, PROMPTS, LENGTHS, KEYS, max_new_tokens=15, sampling=greedy
    )
    np.testing.assert_array_equal(spec.tokens, plain.tokens)
    np.testing.assert_array_equal(spec.lengths, plain.lengths)


def test_row_in_batch_equals_row_alone():
    """Per-row keys: a row decodes to the same tokens whatever batch it is in."""
    batch = speculative_decode(
        TARGET, TARGET_PARAMS, DRAFT, DRAFT_PARAMS, PROMPTS, LENGTHS, KEYS,
        gamma=3, max_new_tokens=12, sampling=SAMPLINGS["t1"],
    )  # fmt: skip
    for b in range(PROMPTS.shape[0]):
        alone = speculative_decode(
            TARGET, TARGET_PARAMS, DRAFT, DRAFT_PARAMS, PROMPTS[b : b + 1],
            LENGTHS[b : b + 1], KEYS[b : b + 1], gamma=3, max_new_tokens=12,
            sampling=SAMPLINGS["t1"],
        )  # fmt: skip
        assert _rows(alone)[0] == _rows(batch)[b]


def test_rows_are_ragged_not_cut_to_the_batch_minimum():
    """Rows accept different numbers of drafts in the same round (no lockstep truncation)."""
    result = speculative_decode(
        TARGET, TARGET_PARAMS, DRAFT, DRAFT_PARAMS, PROMPTS, LENGTHS, KEYS,
        gamma=4, max_new_tokens=20, sampling=SAMPLINGS["t1"],
    )  # fmt: skip
    first_round = np.asarray(result.accepted_per_round)[:, 0]
    assert len(set(first_round.tolist())) > 1
    calls = np.asarray(result.target_calls)
    assert len(set(calls.tolist())) > 1  # rows finish after different numbers of rounds


def test_statistics_add_up_and_max_new_tokens_is_exact():
    """Without EOS every row generates exactly max_new_tokens = min(max, sum(n + 1) per round);
    target calls = rounds; draft calls = gamma * rounds."""
    gamma, max_new = 3, 13
    result = speculative_decode(
        TARGET, TARGET_PARAMS, DRAFT, DRAFT_PARAMS, PROMPTS, LENGTHS, KEYS,
        gamma=gamma, max_new_tokens=max_new, sampling=SAMPLINGS["t1"],
    )  # fmt: skip
    accepted = np.asarray(result.accepted_per_round)
    rounds = (accepted >= 0).sum(1)
    np.testing.assert_array_equal(result.lengths, max_new)
    np.testing.assert_array_equal(result.target_calls, rounds)
    np.testing.assert_array_equal(result.draft_calls, gamma * rounds)
    emitted = np.where(accepted >= 0, accepted + 1, 0).sum(1)
    last = np.array([row[row >= 0][-1] for row in accepted])
    assert ((emitted - (last + 1) < max_new) & (emitted >= max_new)).all()
    summary = result.summary()
    taken = accepted[accepted >= 0]
    assert summary["alpha"] == taken.sum() / (taken.sum() + (taken < gamma).sum())
    assert summary["accepted_per_drafted"] == taken.sum() / (gamma * rounds.sum())
    assert summary["generated_tokens"] == max_new * PROMPTS.shape[0]
    assert summary["accepted_tokens"] == accepted[accepted >= 0].sum()


def test_eos_inside_an_accepted_block_stops_the_row_there():
    """A row stops at its first EOS, even mid-block; later positions are padding."""
    eos = 5
    result = speculative_decode(
        TARGET, TARGET_PARAMS, DRAFT, DRAFT_PARAMS, PROMPTS, LENGTHS, KEYS,
        gamma=4, max_new_tokens=30, sampling=SAMPLINGS["t1"], eos_id=eos, pad_id=0,
    )  # fmt: skip
    tokens, lengths = np.asarray(result.tokens), np.asarray(result.lengths)
    stopped = 0
    for b in range(tokens.shape[0]):
        row = tokens[b, : lengths[b]].tolist()
        assert eos not in row[:-1]
        if row[-1] == eos:
            stopped += 1
        else:
            assert len(row) == 30
        assert (tokens[b, lengths[b] :] == 0).all()
    assert stopped >= 2
    # An EOS in the middle of a block: the last round emitted fewer than n + 1 tokens.
    greedy = speculative_decode(
        TARGET, TARGET_PARAMS, TARGET, TARGET_PARAMS, PROMPTS, LENGTHS, KEYS,
        gamma=6, max_new_tokens=30, sampling=SAMPLINGS["greedy"],
    )  # fmt: skip
    row = _rows(greedy)[0]
    eos = row[2]  # a token generated inside the first (fully accepted) block
    cut = speculative_decode(
        TARGET, TARGET_PARAMS, TARGET, TARGET_PARAMS, PROMPTS, LENGTHS, KEYS,
        gamma=6, max_new_tokens=30, sampling=SAMPLINGS["greedy"], eos_id=eos,
    )  # fmt: skip
    assert _rows(cut)[0] == row[: row.index(eos) + 1]
    assert int(np.asarray(cut.accepted_per_round)[0, 0]) == 6


def _call(**overrides):
    args = dict(
        target=TARGET, target_params=TARGET_PARAMS, draft=DRAFT, draft_params=DRAFT_PARAMS,
        prompt_tokens=PROMPTS, prompt_lengths=LENGTHS, key=KEYS, gamma=2, max_new_tokens=4,
        sampling=SAMPLINGS["t1"],
    )  # fmt: skip
    args.update(overrides)
    return speculative_decode(**args)


@pytest.mark.parametrize(
    "overrides, pattern",
    [
        (dict(gamma=0), r"gamma=0 .*>= 1"),
        (dict(max_new_tokens=0), r"max_new_tokens=0"),
        (dict(draft=ToyLM(V + 1)), r"vocab_size=13 .*vocab_size=12"),
        (dict(prompt_tokens=jnp.zeros((0, 3), jnp.int32), prompt_lengths=None), r"B=0"),
        (dict(prompt_lengths=jnp.array([5, 2, 0, 4])), r"prompt_lengths=\[5, 2, 0, 4\]"),
        (dict(target=ToyLM(V, max_length=6)), r"exceeds the model's maximum length 6"),
        (dict(sampling="greedy"), r"sampling='greedy'"),
        (dict(eos_id=V), r"eos_id=12"),
    ],
)
def test_bad_arguments_raise_before_tracing(overrides, pattern):
    with pytest.raises(ValueError, match=pattern):
        _call(**overrides)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [(dict(temperature=-1.0), r"temperature=-1.0"), (dict(top_k=-2), r"top_k=-2"),
     (dict(top_p=0.0), r"top_p=0.0"), (dict(top_p=1.5), r"top_p=1.5")],
)  # fmt: skip
def test_bad_sampling_settings_are_named(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        SamplingConfig(**kwargs)
