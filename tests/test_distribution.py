"""End to end: speculative_decode samples the target's distribution, with real (tiny) models.

Two random decoder-only transformers (2 layers; the draft's weights are the target's plus noise),
vocabulary V = 5, so every continuation of 3 tokens (125 cells) can be enumerated exactly.
For each sampling setting, 40,000 rows are decoded as one batch by each decoder and the joint
distribution of the first 3 generated tokens is tested:
  - speculative vs autoregressive (two-sample chi-square): detects a total-variation error of
    0.042 with probability 0.99 at significance 1e-3;
  - speculative vs the exact target distribution (goodness of fit): detects 0.030 likewise.
The power figures are asserted from the sample sizes (see tests/stats.py for the argument).
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from stats import SIGNIFICANCE, detectable_tv, goodness_of_fit, two_sample

from spec_decode import SamplingConfig, autoregressive_decode, speculative_decode
from spec_decode.core.reference import reference_probs
from spec_decode.models import LlamaConfig, LlamaLM

V, N, NEW = 5, 40_000, 3
PROMPT = jnp.array([[1, 3, 2, 0]])  # width 4, length 3: the padding slot is exercised
PROMPT_LENGTH = 3


def _config(layers):
    return LlamaConfig(
        vocab_size=V, num_layers=layers, emb_dim=32, num_heads=4, num_kv_heads=2, head_dim=8,
        mlp_dim=64, max_length=64, tie_embeddings=False,
    )  # fmt: skip


def _models():
    """A 2-layer target and a draft of the same shape: the target's weights mixed with noise.

    Random init gives near-uniform next-token distributions, so the output layer is scaled
    up (entropy ~0.7 nats); 10% noise makes acceptance neither trivial nor rare (alpha 0.2 to 0.6).
    """
    target = draft = LlamaLM(_config(2))
    target_params = target.init(jax.random.key(0))
    target_params["lm_head"]["kernel"] = target_params["lm_head"]["kernel"] * 4
    noise = draft.init(jax.random.key(1))
    noise["lm_head"]["kernel"] = noise["lm_head"]["kernel"] * 4
    draft_params = jax.tree.map(lambda a, b: 0.9 * a + 0.1 * b, target_params, noise)
    return target, target_params, draft, draft_params


TARGET, TARGET_PARAMS, DRAFT, DRAFT_PARAMS = _models()
SETTINGS = {
    "temperature_1": SamplingConfig(temperature=1.0),
    "top_k_3": SamplingConfig(temperature=1.0, top_k=3),
    "top_p_0.8": SamplingConfig(temperature=1.0, top_p=0.8),
}


def _exact_joint(sampling):
    """P(y1, y2, y3 | prompt) under the adjusted target, by enumeration [V**3]."""
    prompt = PROMPT[0, :PROMPT_LENGTH].tolist()
    sequences = [prompt + list(c) for c in itertools.product(range(V), repeat=NEW - 1)]
    logits = TARGET.forward(TARGET_PARAMS, jnp.array(sequences))  # [V^2, P + 2, V]
    probs = np.zeros((V,) * NEW)
    for row, continuation in enumerate(itertools.product(range(V), repeat=NEW - 1)):
        p1 = reference_probs(logits[row, PROMPT_LENGTH - 1], sampling)
        p2 = reference_probs(logits[row, PROMPT_LENGTH], sampling)
        p3 = reference_probs(logits[row, PROMPT_LENGTH + 1], sampling)
        y1, y2 = continuation
        probs[y1, y2, :] = p1[y1] * p2[y2] * p3
    return probs.reshape(-1)


def _counts(result):
    tokens = np.asarray(result.tokens)[:, :NEW]
    assert (np.asarray(result.lengths) == NEW).all()
    cells = (tokens * np.array([V * V, V, 1])).sum(1)
    return np.bincount(cells, minlength=V**NEW)


@pytest.mark.parametrize("name", list(SETTINGS))
def test_first_three_tokens_follow_the_target(name):
    sampling = SETTINGS[name]
    prompts = jnp.repeat(PROMPT, N, axis=0)
    lengths = jnp.full((N,), PROMPT_LENGTH)
    spec = speculative_decode(
        TARGET, TARGET_PARAMS, DRAFT, DRAFT_PARAMS, prompts, lengths, jax.random.key(1),
        gamma=2, max_new_tokens=NEW, sampling=sampling,
    )  # fmt: skip
    plain = autoregressive_decode(
        TARGET, TARGET_PARAMS, prompts, lengths, jax.random.key(2), max_new_tokens=NEW,
        sampling=sampling,
    )  # fmt: skip
    exact = _exact_joint(sampling)
    # The test is only meaningful if the draft really differs from the target.
    alpha = spec.summary()["alpha"]
    assert 0.15 < alpha < 0.9, alpha
    assert detectable_tv(N, V**NEW - 1, two_sample=True) < 0.042
    assert detectable_tv(N, V**NEW - 1) < 0.030
    assert two_sample(_counts(spec), _counts(plain)) > SIGNIFICANCE
    assert goodness_of_fit(_counts(spec), exact) > SIGNIFICANCE
    assert goodness_of_fit(_counts(plain), exact) > SIGNIFICANCE
