"""The decoder object: stream == run, one definition of the statistics everywhere they show."""

import io
from contextlib import redirect_stderr

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from toy import ToyLM

from spec_decode import DecoderParams, SamplingConfig, SpeculativeDecoder
from spec_decode.app import demo, generation
from spec_decode.app.generation import GenerateOptions
from spec_decode.cli import _print_stats
from spec_decode.core import stats
from spec_decode.t5x_compat import inference

V, EOS = 12, 11
TARGET, DRAFT = ToyLM(V), ToyLM(V)
TARGET_PARAMS = TARGET.init(jax.random.key(1))
DRAFT_PARAMS = jax.tree.map(lambda a, b: a + 0.7 * b, TARGET_PARAMS, DRAFT.init(jax.random.key(2)))
PARAMS = DecoderParams(TARGET_PARAMS, DRAFT_PARAMS)
SAMPLING = SamplingConfig(temperature=1.0, top_k=6)


def _prompts(batch: int):
    rng = np.random.default_rng(batch)
    lengths = rng.integers(1, 6, size=batch)
    prompts = np.where(np.arange(5) < lengths[:, None], rng.integers(0, V - 1, (batch, 5)), 0)
    return jnp.asarray(prompts, jnp.int32), jnp.asarray(lengths, jnp.int32)


@pytest.mark.parametrize("batch", [1, 3, 6])
@pytest.mark.parametrize("with_draft", [True, False])
def test_stream_yields_exactly_the_tokens_of_run(batch, with_draft):
    """Round by round, the same tokens and the same record as the while loop, EOS included."""
    decoder = SpeculativeDecoder(
        TARGET, DRAFT if with_draft else None, 3 if with_draft else None,
        max_new_tokens=14, sampling=SAMPLING, eos_id=EOS,
    )  # fmt: skip
    prompts, lengths = _prompts(batch)
    key = jax.random.key(batch)
    expected = decoder.run(PARAMS, prompts, lengths, key)
    stream = decoder.stream(PARAMS, prompts, lengths, key)
    streamed = [[] for _ in range(batch)]
    for new_tokens in stream:
        for row, tokens in enumerate(new_tokens):
            streamed[row] += tokens.tolist()
    result = stream.result()
    for name in ("tokens", "lengths", "target_calls", "draft_calls", "accepted_per_round"):
        np.testing.assert_array_equal(getattr(result, name), getattr(expected, name), name)
    lengths_out = np.asarray(expected.lengths)
    for row in range(batch):
        assert streamed[row] == np.asarray(expected.tokens[row, : lengths_out[row]]).tolist()


def test_eos_mid_block_is_streamed_and_run_alike():
    """A row whose EOS is an accepted draft in the middle of a block stops right after it."""
    decoder = SpeculativeDecoder(TARGET, DRAFT, 4, max_new_tokens=30, sampling=SAMPLING, eos_id=EOS)
    prompts, lengths = _prompts(24)
    keys = jax.random.split(jax.random.key(0), 24)
    result = decoder.run(PARAMS, prompts, lengths, keys)
    tokens, n = np.asarray(result.tokens), np.asarray(result.lengths)
    ended = [b for b in range(24) if n[b] < 30]
    assert ended, "no row met EOS: the case is not exercised"
    for b in ended:
        assert tokens[b, n[b] - 1] == EOS and EOS not in tokens[b, : n[b] - 1].tolist()
    rounds = 0
    for new_tokens in decoder.stream(PARAMS, prompts, lengths, keys):
        rounds += 1
        for piece in new_tokens:
            assert EOS not in piece[:-1].tolist()  # nothing is streamed past a row's EOS
    assert rounds == int(np.max(np.sum(np.asarray(result.accepted_per_round) >= 0, axis=1)))


def _toy_result(gamma: int = 3, batch: int = 4):
    decoder = SpeculativeDecoder(
        TARGET, DRAFT, gamma, max_new_tokens=16, sampling=SAMPLING, eos_id=EOS
    )
    prompts, lengths = _prompts(batch)
    return jax.device_get(decoder.run(PARAMS, prompts, lengths, jax.random.key(5)))


def test_histogram_sums_to_the_rounds_per_row_and_in_total():
    result = _toy_result()
    counts = result.row_counts()
    rounds = np.sum(np.asarray(result.accepted_per_round) >= 0, axis=1)
    np.testing.assert_array_equal(np.asarray(counts.histogram).sum(axis=1), rounds)
    np.testing.assert_array_equal(rounds, result.target_calls)  # one target call per round
    summary = result.summary()
    assert sum(summary["acceptance_histogram"]) == summary["rounds"] == int(rounds.sum())
    for row in range(rounds.size):
        assert sum(result.row_summary(row)["acceptance_histogram"]) == int(rounds[row])
    # The histogram's mean is the accepted drafts per round.
    mean = np.dot(summary["acceptance_histogram"], np.arange(4)) / summary["rounds"]
    assert mean == summary["accepted_tokens"] / summary["rounds"]


def test_alpha_is_the_papers_accepted_over_examined():
    """Per round the drafts are examined up to the first rejection (none if all accepted)."""
    result = _toy_result()
    per_round = np.asarray(result.accepted_per_round)
    taken = per_round[per_round >= 0]
    examined = taken.sum() + (taken < 3).sum()
    assert 0 < taken.sum() < examined  # both acceptances and rejections happened
    assert result.summary()["alpha"] == taken.sum() / examined
    assert result.summary()["alpha"] > result.summary()["accepted_per_drafted"]


def test_alpha_is_one_number_in_the_cli_the_demo_t5x_inference_and_the_result():
    result = _toy_result()
    want = result.summary()["alpha"]
    # The CLI's stats line, from the samples that generation builds out of the result.
    target = type("T", (), {"tokenizer": type("K", (), {"decode": lambda *a, **k: ""})()})()
    samples = [generation._sample("p", row, result, row, target) for row in range(4)]
    err = io.StringIO()
    with redirect_stderr(err):
        _print_stats(samples, GenerateOptions(gamma=3))
    assert f"alpha {want:.2f}" in err.getvalue()
    # The demo's report, from one result per prompt.
    rows = [jax.tree.map(lambda x, b=b: x[b : b + 1], result) for b in range(4)]
    options = demo.DemoOptions(gamma=3, prompts=("a", "b", "c", "d"), repeats=1)
    seconds = {"autoregressive": [[1.0] * 4], "speculative": [[1.0] * 4]}
    tokenizer = type("K", (), {"decode": lambda *a, **k: ""})()
    report = demo._report(
        options, tokenizer, {"autoregressive": rows, "speculative": rows}, seconds
    )
    assert report["alpha"] == pytest.approx(want, rel=1e-12)
    assert [p["alpha"] for p in report["prompts"]] == [r.summary()["alpha"] for r in rows]
    # T5X inference: per-example records and the summary from the decode_fn's statistics.
    counts = result.row_counts()
    records = []
    for row in range(4):
        per_example = {name: int(getattr(counts, name)[row]) for name in inference.STATISTICS}
        records.append(inference._record({}, np.zeros(3, int), 0.0, per_example))
        assert records[-1]["stats"]["alpha"] == result.row_summary(row)["alpha"]
    totals = {name: int(np.sum(getattr(counts, name))) for name in inference.STATISTICS}
    assert inference._summary(totals, 4, 3, 1.0)["alpha"] == want
    assert stats.alpha(0, 0) is None  # the empty case is one value everywhere


def test_autoregressive_result_has_no_alpha_and_one_bucket():
    decoder = SpeculativeDecoder(TARGET, max_new_tokens=5, sampling=SAMPLING)
    prompts, lengths = _prompts(2)
    summary = decoder.run(PARAMS, prompts, lengths).summary()
    assert summary["alpha"] is None and summary["accepted_per_drafted"] is None
    assert summary["acceptance_histogram"] == [summary["rounds"]] == [10]


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(draft=None, gamma=3), r"gamma=3 is not allowed without a draft"),
        (dict(draft=DRAFT, gamma=1000), r"gamma=1000 is not allowed: .*<= 32"),
        (dict(draft=DRAFT, gamma=2.5), r"gamma=2.5 is not allowed"),
        (dict(draft=DRAFT, pad_id=-1), r"pad_id=-1 is not allowed"),
        (dict(draft=DRAFT, mesh="cpu"), r"mesh='cpu' is not allowed"),
    ],
)
def test_decoder_arguments_are_checked_on_construction(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        SpeculativeDecoder(TARGET, **kwargs)


def test_params_must_be_a_pair():
    decoder = SpeculativeDecoder(TARGET, DRAFT, 2)
    prompts, lengths = _prompts(1)
    with pytest.raises(ValueError, match="params of type dict is not allowed"):
        decoder.run({"target": TARGET_PARAMS}, prompts, lengths)


def test_greedy_acceptance_equals_accept_reject_on_one_hot_distributions():
    """The argmax fast path is accept_reject itself when p and q are one-hot (ties included)."""
    from spec_decode.core.rejection import accept_greedy, accept_reject
    from spec_decode.core.sampling import adjusted_probs

    rng = np.random.default_rng(0)
    greedy = SamplingConfig(temperature=0.0)
    for k in (1, 3, 6):
        logits = jnp.asarray(rng.integers(0, 3, (64, k + 1, 5)), jnp.float32)  # many ties
        draft_logits = jnp.asarray(rng.integers(0, 3, (64, k, 5)), jnp.float32)
        p, q = adjusted_probs(logits, greedy), adjusted_probs(draft_logits, greedy)
        x = jnp.argmax(draft_logits, axis=-1).astype(jnp.int32)
        # Half the rows copy the target's choices, so long accepted runs occur too.
        x = jnp.where(jnp.arange(64)[:, None] < 32, jnp.argmax(logits[:, :k], -1), x)
        want = accept_reject(p, q, x, jax.random.key(k))
        got = accept_greedy(logits, x)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        assert int(jnp.sum(got[0] == k)) > 0 and int(jnp.sum(got[0] < k)) > 0
