"""Speculative sampling with a draft that reads the target's features is exact.

tests/test_distribution.py's machinery with an EAGLE draft (drafts/eagle.py) in place of the
plain one: the same 2-layer target (V = 5, so the 125 continuations of 3 tokens are enumerated
exactly), 40,000 rows per sampling setting (temperature 1, top-k 3, top-p 0.8), the joint
distribution of the first 3 tokens tested against the exact target distribution (goodness of
fit: detects a total-variation error of 0.030 with probability 0.99 at significance 1e-3; the
autoregressive sampler itself is tested there). Gamma 2: a round after one that accepted a
draft re-reads 2 positions with the target's features. The draft is one block from the
target's first, mixed with noise, whose fc also reads the features: alpha in (0.15, 0.9).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from stats import SIGNIFICANCE, detectable_tv, goodness_of_fit
from test_distribution import (
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

from spec_decode import speculative_decode
from spec_decode.drafts import EagleDraft, eagle_config, init_eagle

N = 40_000


def _feature_draft():
    draft = EagleDraft(eagle_config(TARGET.config, 1))
    params = init_eagle(draft, TARGET_PARAMS, jax.random.key(0))
    noise = init_eagle(draft, TARGET_PARAMS, jax.random.key(1), from_target=False)
    own = {k: params[k] for k in ("fc", "layers", "final_norm")}
    mixed = jax.tree.map(lambda a, b: 0.8 * a + 0.2 * b, own, {k: noise[k] for k in own})
    return draft, dict(params, **mixed)


DRAFT, DRAFT_PARAMS = _feature_draft()


@pytest.mark.parametrize("name", list(SETTINGS))
def test_first_three_tokens_follow_the_target(name):
    sampling = SETTINGS[name]
    prompts = jnp.repeat(PROMPT, N, axis=0)
    lengths = jnp.full((N,), PROMPT_LENGTH)
    spec = speculative_decode(
        TARGET, TARGET_PARAMS, DRAFT, DRAFT_PARAMS, prompts, lengths, jax.random.key(1),
        gamma=2, max_new_tokens=NEW, sampling=sampling,
    )  # fmt: skip
    alpha = spec.summary()["alpha"]
    assert 0.15 < alpha < 0.9, alpha  # the draft differs from the target, and is no stranger
    histogram = np.asarray(spec.summary()["acceptance_histogram"])
    assert histogram[1] > 0.1 * histogram.sum()  # then a round re-reads 2 positions
    assert detectable_tv(N, V**NEW - 1) < 0.030
    assert goodness_of_fit(_counts(spec), _exact_joint(sampling)) > SIGNIFICANCE
