"""Greedy speculative decoding with transformers equals the target alone, token for token."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_decode import SamplingConfig, autoregressive_decode, speculative_decode
from spec_decode.models import LlamaConfig, LlamaLM


def _model(layers, dim, seed):
    config = LlamaConfig(
        vocab_size=97, num_layers=layers, emb_dim=dim, num_heads=4, num_kv_heads=2, head_dim=16,
        mlp_dim=2 * dim, max_length=128,
    )  # fmt: skip
    model = LlamaLM(config)
    return model, model.init(jax.random.key(seed))


TARGET, TARGET_PARAMS = _model(3, 64, 0)
DRAFT, DRAFT_PARAMS = _model(1, 32, 1)
GREEDY = SamplingConfig(temperature=0.0)


@pytest.mark.parametrize("batch", [1, 3, 8])
@pytest.mark.parametrize("gamma", [1, 4, 7])
def test_greedy_speculative_equals_greedy_target(batch, gamma):
    rng = np.random.default_rng(batch * 10 + gamma)
    lengths = rng.integers(1, 9, size=batch)  # mixed prompt lengths, 1 included
    prompts = np.zeros((batch, 8), np.int32)
    for b, n in enumerate(lengths):
        prompts[b, :n] = rng.integers(2, 97, size=n)
    spec = speculative_decode(
        TARGET, TARGET_PARAMS, DRAFT, DRAFT_PARAMS, jnp.asarray(prompts), jnp.asarray(lengths),
        gamma=gamma, max_new_tokens=24, sampling=GREEDY, eos_id=1,
    )  # fmt: skip
    plain = autoregressive_decode(
        TARGET, TARGET_PARAMS, jnp.asarray(prompts), jnp.asarray(lengths), max_new_tokens=24,
        sampling=GREEDY, eos_id=1,
    )  # fmt: skip
    np.testing.assert_array_equal(spec.lengths, plain.lengths)
    np.testing.assert_array_equal(spec.tokens, plain.tokens)
    assert (np.asarray(spec.target_calls) <= np.asarray(plain.target_calls)).all()
