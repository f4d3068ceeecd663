"""Model-free drafts: the contract, count tables, sparse == dense, prompt lookup vs an oracle."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_decode import Cache, LanguageModel, SamplingConfig, adjusted_probs, rollback
from spec_decode.drafts import (
    BigramDraft,
    PromptLookupDraft,
    SparseBigramDraft,
    UnigramDraft,
    ngram_params_from_tokens,
    sparse_bigram_params_from_tokens,
)

V = 7
CORPUS = [np.random.default_rng(0).integers(0, V - 1, size=n) for n in (40, 25, 1)]
# Token V - 1 never occurs: its bigram row backs off to the unigram and, with smoothing 0, it has
# probability 0 everywhere (logit -inf).


def _drafts() -> dict[str, tuple[object, object]]:
    return {
        "unigram": (UnigramDraft(V), ngram_params_from_tokens(CORPUS, V, order=1)),
        "bigram": (BigramDraft(V), ngram_params_from_tokens(CORPUS, V, order=2)),
        "bigram_k0": (BigramDraft(V), ngram_params_from_tokens(CORPUS, V, 2, smoothing=0)),
        "sparse": (SparseBigramDraft(V, 3), sparse_bigram_params_from_tokens(CORPUS, V, 3)),
        "lookup": (PromptLookupDraft(V, max_ngram=3), None),
    }


DRAFTS = _drafts()


@functools.partial(jax.jit, static_argnums=0)
def _extend(draft, params, tokens, cache):
    return draft.extend(params, tokens, cache)


def _lengths_cache(batch: int):
    return UnigramDraft(V).init_cache(None, batch, 8)


def _tokens(seed: int, shape: tuple[int, ...]) -> jax.Array:
    # A small alphabet so that prompt lookup finds many matches.
    return jnp.asarray(np.random.default_rng(seed).integers(0, 4, size=shape), jnp.int32)


@pytest.mark.parametrize("name", DRAFTS)
def test_contract_shapes_and_distributions(name):
    draft, params = DRAFTS[name]
    assert isinstance(draft, LanguageModel) and draft.vocab_size == V
    twin = dataclasses.replace(draft)  # an equal, separately built draft: same jit cache entry
    assert twin == draft and hash(twin) == hash(draft)
    cache = draft.init_cache(params, 3, 16)
    assert isinstance(cache, Cache)
    np.testing.assert_array_equal(cache.lengths, [0, 0, 0])
    logits, cache = _extend(draft, params, _tokens(1, (3, 4)), cache)
    assert logits.shape == (3, 4, V) and jnp.issubdtype(logits.dtype, jnp.floating)
    np.testing.assert_array_equal(cache.lengths, [4, 4, 4])
    for sampling in (SamplingConfig(), SamplingConfig(0.0), SamplingConfig(0.7, 3, 0.9)):
        probs = adjusted_probs(logits, sampling)
        assert not np.isnan(probs).any()
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-6)


@pytest.mark.parametrize("name", ["unigram", "bigram", "bigram_k0", "sparse"])
def test_ngram_logits_are_normalised_log_probs(name):
    draft, params = DRAFTS[name]
    logits, _ = _extend(draft, params, jnp.arange(V)[None, :], draft.init_cache(params, 1, V))
    np.testing.assert_allclose(jax.nn.logsumexp(logits, axis=-1), 0.0, atol=1e-5)


@pytest.mark.parametrize("name", DRAFTS)
def test_block_extend_equals_single_extends_on_ragged_rows(name):
    draft, params = DRAFTS[name]
    cache = draft.init_cache(params, 3, 16)
    _, cache = _extend(draft, params, _tokens(2, (3, 6)), cache)
    cache = rollback(cache, jnp.array([6, 3, 1]))
    block = _tokens(3, (3, 4))
    block_logits, block_cache = _extend(draft, params, block, cache)
    step_logits = []
    for i in range(4):
        logits, cache = _extend(draft, params, block[:, i : i + 1], cache)
        step_logits.append(logits)
    np.testing.assert_array_equal(block_logits, jnp.concatenate(step_logits, axis=1))
    np.testing.assert_array_equal(block_cache.lengths, cache.lengths)
    np.testing.assert_array_equal(cache.lengths, [10, 7, 5])


@pytest.mark.parametrize("name", DRAFTS)
def test_rollback_then_extend_equals_each_row_fresh(name):
    draft, params = DRAFTS[name]
    prefix, garbage, block = _tokens(4, (3, 6)), _tokens(5, (3, 3)), _tokens(6, (3, 3))
    kept = [6, 4, 2]
    cache = draft.init_cache(params, 3, 16)
    _, cache = _extend(draft, params, prefix, cache)
    _, cache = _extend(draft, params, garbage, cache)
    logits, cache = _extend(draft, params, block, rollback(cache, jnp.array(kept)))
    np.testing.assert_array_equal(cache.lengths, [9, 7, 5])
    for row, length in enumerate(kept):
        alone = draft.init_cache(params, 1, 16)
        _, alone = _extend(draft, params, prefix[row : row + 1, :length], alone)
        row_logits, _ = _extend(draft, params, block[row : row + 1], alone)
        np.testing.assert_array_equal(logits[row], row_logits[0])


def test_unigram_params_reproduce_counts():
    corpus = [[0, 1, 1], [2, 2, 2]]
    probs = np.exp(ngram_params_from_tokens(corpus, 4, order=1, smoothing=0)["log_probs"])
    np.testing.assert_allclose(probs, [1 / 6, 2 / 6, 3 / 6, 0.0], rtol=1e-6)
    probs = np.exp(ngram_params_from_tokens(corpus, 4, order=1, smoothing=0.5)["log_probs"])
    np.testing.assert_allclose(probs, np.array([1.5, 2.5, 3.5, 0.5]) / 8, rtol=1e-6)
    # The logits ignore the context.
    draft, params = UnigramDraft(4), ngram_params_from_tokens(corpus, 4, order=1)
    logits, _ = draft.extend(params, jnp.array([[0, 3]]), draft.init_cache(params, 1, 2))
    np.testing.assert_array_equal(logits[0, 0], logits[0, 1])


def test_bigram_params_reproduce_counts():
    # 3 always follows 2; 0 is followed by 1 twice and 2 once; 3 only ends sequences.
    corpus = [[0, 1, 0, 2, 3], [0, 1, 2, 3], [2, 3]]
    probs = np.exp(ngram_params_from_tokens(corpus, 5, order=2, smoothing=0)["log_probs"])
    np.testing.assert_allclose(probs[2], [0, 0, 0, 1, 0], atol=1e-7)
    np.testing.assert_allclose(probs[0], [0, 2 / 3, 1 / 3, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(probs[1], [1 / 2, 0, 1 / 2, 0, 0], rtol=1e-6)
    # Pairs do not cross sequences, so 3 is never a context: its row is the unigram.
    unigram = np.exp(ngram_params_from_tokens(corpus, 5, order=1, smoothing=0)["log_probs"])
    np.testing.assert_allclose(probs[3], unigram, rtol=1e-6)
    np.testing.assert_allclose(probs[4], unigram, rtol=1e-6)

    smoothed = np.exp(ngram_params_from_tokens(corpus, 5, order=2, smoothing=0.01)["log_probs"])
    assert (smoothed > 0).all() and smoothed[2].argmax() == 3 and smoothed[2, 3] > 0.98
    np.testing.assert_allclose(smoothed.sum(-1), 1.0, rtol=1e-6)
    # The logits at position i are the table row of tokens[:, i].
    draft = BigramDraft(5)
    params = ngram_params_from_tokens(corpus, 5, order=2, smoothing=0)
    logits, _ = draft.extend(params, jnp.array([[2, 0]]), draft.init_cache(params, 1, 2))
    np.testing.assert_allclose(np.exp(logits[0]), probs[[2, 0]], rtol=1e-6)


@pytest.mark.parametrize("smoothing", [0.0, 0.01])
def test_sparse_bigram_with_m_equal_v_equals_dense(smoothing):
    dense = ngram_params_from_tokens(CORPUS, V, order=2, smoothing=smoothing)
    sparse = sparse_bigram_params_from_tokens(CORPUS, V, top_m=V, smoothing=smoothing)
    tokens = jnp.arange(V)[None, :]
    dense_logits, _ = BigramDraft(V).extend(dense, tokens, _lengths_cache(1))
    sparse_logits, _ = SparseBigramDraft(V, V).extend(sparse, tokens, _lengths_cache(1))
    np.testing.assert_allclose(np.exp(sparse_logits), np.exp(dense_logits), atol=1e-6)


def test_sparse_bigram_stores_the_dense_top_entries():
    dense = np.exp(ngram_params_from_tokens(CORPUS, V, order=2)["log_probs"])
    sparse = sparse_bigram_params_from_tokens(CORPUS, V, top_m=2)
    stored = np.asarray(sparse["next_tokens"])  # [V, 2]
    for row in range(V):
        np.testing.assert_allclose(
            np.exp(sparse["next_log_probs"][row]), dense[row, stored[row]], rtol=1e-5
        )
        assert dense[row, stored[row]].min() >= np.sort(dense[row])[-2] - 1e-7
    # The never-seen context V - 1 is exactly the unigram.
    logits, _ = SparseBigramDraft(V, 2).extend(sparse, jnp.array([[V - 1]]), _lengths_cache(1))
    np.testing.assert_allclose(np.exp(logits[0, 0]), dense[V - 1], rtol=1e-5)


def _lookup(history: list[int], max_ngram=3, min_ngram=1) -> int:
    """The prediction after the last token of ``history`` (one row, the whole history at once)."""
    draft = PromptLookupDraft(V, max_ngram, min_ngram)
    # Padded to one width so that every call reuses one compilation; the prediction after
    # position p reads nothing beyond p.
    tokens = jnp.asarray([history + [0] * (12 - len(history))], jnp.int32)
    logits, _ = _extend(draft, None, tokens, draft.init_cache(None, 1, 12))
    prediction = logits[0, len(history) - 1]
    assert (prediction == 0).sum() == 1
    return int(prediction.argmax())


def test_prompt_lookup_continues_a_repeated_ngram():
    assert _lookup([5, 6, 3, 1, 2, 5, 6]) == 3


def test_prompt_lookup_prefers_the_longest_then_the_most_recent_match():
    # "1 2" was followed by 3; the single token "2" was last followed by 5.
    assert _lookup([1, 2, 3, 4, 2, 5, 1, 2]) == 3
    assert _lookup([1, 2, 3, 4, 2, 5, 1, 2], max_ngram=1) == 5
    # Two occurrences of "1 2" (no 3-gram match): the later one wins.
    assert _lookup([1, 2, 3, 0, 1, 2, 4, 5, 1, 2]) == 4


def test_prompt_lookup_without_a_match_repeats_the_last_token():
    assert _lookup([1, 2, 3]) == 3
    # A 1-gram match ("2" then 5) does not count when min_ngram = 2.
    assert _lookup([2, 5, 1, 2], min_ngram=2) == 2
    assert _lookup([2, 5, 1, 2], min_ngram=1) == 5


def _oracle(history: list[int], max_ngram: int, min_ngram: int) -> int:
    """Plain Python prompt lookup after the last token of ``history``."""
    last = len(history) - 1
    for n in range(max_ngram, min_ngram - 1, -1):
        if n > len(history):
            continue
        suffix = history[last - n + 1 :]
        for end in range(last - 1, n - 2, -1):
            if history[end - n + 1 : end + 1] == suffix:
                return history[end + 1]
    return history[last]


def test_prompt_lookup_matches_a_python_oracle():
    draft = PromptLookupDraft(V, max_ngram=3, min_ngram=2)
    rng = np.random.default_rng(7)
    rows = [list(rng.integers(0, 3, size=n)) for n in (17, 12)]
    cache = draft.init_cache(None, 2, 20)
    _, cache = _extend(draft, None, jnp.asarray([r[:5] for r in rows], jnp.int32), cache)
    cache = rollback(cache, jnp.array([5, 0]))
    for start in range(0, 12, 4):  # row 0 is 5 tokens ahead of row 1
        block = jnp.asarray([rows[0][5 + start : 9 + start], rows[1][start : start + 4]])
        logits, cache = _extend(draft, None, block, cache)
        for i in range(4):
            got = logits[:, i].argmax(-1)
            assert int(got[0]) == _oracle(rows[0][: 5 + start + i + 1], 3, 2)
            assert int(got[1]) == _oracle(rows[1][: start + i + 1], 3, 2)


@pytest.mark.parametrize(
    "make",
    [
        lambda: UnigramDraft(0),
        lambda: BigramDraft(2.5),
        lambda: SparseBigramDraft(4, 5),
        lambda: PromptLookupDraft(V, max_ngram=1, min_ngram=2),
        lambda: PromptLookupDraft(V, min_ngram=0),
        lambda: ngram_params_from_tokens(CORPUS, V, order=3),
        lambda: ngram_params_from_tokens(CORPUS, V, smoothing=-1.0),
        lambda: ngram_params_from_tokens([[0, V]], V),
        lambda: ngram_params_from_tokens([[]], V, smoothing=0),
        lambda: sparse_bigram_params_from_tokens(CORPUS, V, top_m=0),
        lambda: UnigramDraft(V).init_cache(None, 0, 8),
        lambda: BigramDraft(V).extend(
            DRAFTS["unigram"][1], jnp.zeros((1, 1), int), _lengths_cache(1)
        ),
        lambda: UnigramDraft(V).extend(
            DRAFTS["unigram"][1], jnp.zeros((2,), int), _lengths_cache(2)
        ),
        lambda: UnigramDraft(V).extend(
            DRAFTS["unigram"][1], jnp.zeros((2, 1), int), _lengths_cache(1)
        ),
    ],
)
def test_bad_arguments_raise_value_errors(make):
    with pytest.raises(ValueError, match="not allowed"):
        make()
