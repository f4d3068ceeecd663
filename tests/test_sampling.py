"""Adjusted distributions: argmax, temperature, top-k, top-p and their combinations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_decode import SamplingConfig, adjusted_probs
from spec_decode.core.reference import reference_probs
from spec_decode.core.sampling import sample_from

CONFIGS = [
    SamplingConfig(temperature=0.0), SamplingConfig(temperature=1.0),
    SamplingConfig(temperature=0.5), SamplingConfig(temperature=1.0, top_k=3),
    SamplingConfig(temperature=2.0, top_p=0.6), SamplingConfig(temperature=0.7, top_k=5, top_p=0.9),
    SamplingConfig(temperature=1.0, top_k=1),
]  # fmt: skip


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_matches_the_plain_numpy_definition(config):
    logits = np.random.default_rng(0).normal(size=(16, 11)) * 3
    ours = np.asarray(adjusted_probs(jnp.asarray(logits), config))
    for row in range(16):
        np.testing.assert_allclose(ours[row], reference_probs(logits[row], config), atol=2e-6)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours.sum(-1), 1.0, atol=1e-6)


def test_argmax_ties_go_to_the_lowest_id():
    probs = adjusted_probs(jnp.array([[1.0, 3.0, 3.0, 2.0]]), SamplingConfig(temperature=0.0))
    np.testing.assert_array_equal(probs, [[0, 1, 0, 0]])


def test_top_k_and_top_p_keep_the_right_sets():
    logits = jnp.log(jnp.array([[0.05, 0.4, 0.3, 0.15, 0.1]]))
    top2 = adjusted_probs(logits, SamplingConfig(top_k=2))
    np.testing.assert_allclose(top2, [[0, 4 / 7, 3 / 7, 0, 0]], rtol=1e-5)
    # top_p = 0.7: 0.4 + 0.3 reaches 0.7 -> keep two; 0.71 needs a third.
    nucleus = adjusted_probs(logits, SamplingConfig(top_p=0.7))
    np.testing.assert_allclose(nucleus, [[0, 4 / 7, 3 / 7, 0, 0]], rtol=1e-5)
    wider = adjusted_probs(logits, SamplingConfig(top_p=0.71))
    np.testing.assert_allclose(wider, [[0, 0.4 / 0.85, 0.3 / 0.85, 0.15 / 0.85, 0]], rtol=1e-5)


def test_bfloat16_logits_give_float32_probabilities():
    probs = adjusted_probs(jnp.ones((2, 5), jnp.bfloat16), SamplingConfig())
    assert probs.dtype == jnp.float32


def test_sample_from_never_draws_zero_probability():
    probs = jnp.array([0.0, 0.5, 0.0, 0.5])
    keys = jax.random.split(jax.random.key(0), 2000)
    draws = np.asarray(jax.vmap(sample_from, in_axes=(0, None))(keys, probs))
    assert set(np.unique(draws)) == {1, 3}


def test_config_is_hashable_and_static():
    assert hash(SamplingConfig(0.5, 3, 0.9)) == hash(SamplingConfig(0.5, 3, 0.9))
