"""A draft that reads the target's features (EAGLE-style, drafts/eagle.py) through the one loop.

- Greedy with a feature draft == greedy with the target alone: float32 tiny Llamas, ragged
  prompts (lengths 1..6), EOS, max_new_tokens, gamma 1, 3 and "auto" with runs of plain steps.
- A draft built to be the target (its blocks, fc = [I; 0]) accepts every draft (alpha 1).
- Bad pairings fail before tracing; a SmolLM2-shaped draft is small.

tests/test_feature_alignment.py checks that every feature handed over is the right one, and
tests/test_feature_distribution.py that sampling stays exact.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_auto_gamma import ScriptedPolicy

from spec_decode import DecoderParams, SamplingConfig, SpeculativeDecoder, autoregressive_decode
from spec_decode.core.policy import RoundCosts
from spec_decode.drafts.eagle import EagleDraft, eagle_config, init_eagle, own_parameter_count
from spec_decode.models import LlamaConfig, tiny_llama

GREEDY = SamplingConfig(temperature=0.0)
COSTS = RoundCosts(draft=0.05, verify=(1.0, 1.02, 1.04))  # gamma "auto" in 0..2
TARGET, TARGET_PARAMS = tiny_llama(2, seed=0, vocab_size=48, max_length=128)
LENGTHS = np.array([1, 6, 3, 2, 5])
PROMPTS = np.where(
    np.arange(6) < LENGTHS[:, None], np.random.default_rng(0).integers(2, 48, (5, 6)), 0
)


def _eagle(num_layers=1, feature_weight=0.5, seed=1):
    """An EAGLE draft from the target's first blocks whose fc also reads the features."""
    draft = EagleDraft(eagle_config(TARGET.config, num_layers))
    params = init_eagle(draft, TARGET_PARAMS, jax.random.key(seed))
    dim = TARGET.config.emb_dim
    noise = jax.random.normal(jax.random.key(seed + 100), (dim, dim)) / np.sqrt(dim)
    params["fc"]["kernel"] = params["fc"]["kernel"].at[dim:].set(feature_weight * noise)
    return draft, params


def _greedy_target(max_new_tokens=24, eos_id=1):
    return autoregressive_decode(
        TARGET, TARGET_PARAMS, PROMPTS, LENGTHS, max_new_tokens=max_new_tokens,
        sampling=GREEDY, eos_id=eos_id,
    )  # fmt: skip


def _assert_same_tokens(got, want):
    np.testing.assert_array_equal(got.tokens, want.tokens)
    np.testing.assert_array_equal(got.lengths, want.lengths)


@pytest.mark.parametrize("gamma", [1, 3, "auto"])
def test_greedy_equals_the_target_alone(gamma):
    draft, params = _eagle()
    policy = ScriptedPolicy(COSTS, script=(2, 0, 0, 2, 1, 0)) if gamma == "auto" else None
    decoder = SpeculativeDecoder(
        TARGET, draft, gamma, max_new_tokens=24, sampling=GREEDY, eos_id=1, policy=policy
    )
    got = decoder.run(DecoderParams(TARGET_PARAMS, params), PROMPTS, LENGTHS)
    _assert_same_tokens(got, _greedy_target())
    summary = got.summary()
    assert 0 < summary["alpha"] < 1  # a real draft: some accepted, some rejected
    if gamma == "auto":
        gammas = np.asarray(got.gamma_per_round)
        assert (gammas == 0).sum() >= 4 and (gammas == 2).any()  # plain runs and catch-up


def test_a_draft_built_to_be_the_target_accepts_everything():
    """The target's two blocks and final norm, fc = [I; 0]: every round accepts all gamma."""
    draft = EagleDraft(eagle_config(TARGET.config, num_layers=2))
    params = init_eagle(draft, TARGET_PARAMS, jax.random.key(0))
    decoder = SpeculativeDecoder(TARGET, draft, 3, max_new_tokens=24, sampling=GREEDY)
    got = decoder.run(DecoderParams(TARGET_PARAMS, params), PROMPTS, LENGTHS)
    _assert_same_tokens(got, _greedy_target(eos_id=None))
    assert got.summary()["alpha"] == 1.0


def test_bad_pairings_fail_before_tracing():
    draft, _ = _eagle()
    with pytest.raises(ValueError, match="has no extend_features"):
        from spec_decode.drafts import UnigramDraft

        SpeculativeDecoder(UnigramDraft(48), draft, 2)
    wide = EagleDraft(eagle_config(TARGET.config, emb_dim=64, head_dim=16, mlp_dim=128))
    with pytest.raises(ValueError, match="feature_dim=64 is not allowed"):
        SpeculativeDecoder(TARGET, wide, 2)
    with pytest.raises(ValueError, match="extend_conditioned"):
        draft.extend(None, jnp.zeros((1, 1), jnp.int32), None)
    with pytest.raises(ValueError, match=r"features with shape=\(1, 2, 32\) is not allowed"):
        draft.extend_conditioned(
            None, jnp.zeros((1, 1), jnp.int32), jnp.zeros((1, 2, 32)), draft.init_cache(None, 1, 8)
        )


def test_a_smollm2_shaped_draft_is_small():
    """One block of SmolLM2-135M's shape (D 576, 9 + 3 + 3 heads of 64, MLP 1536): 4.2M own
    parameters, 8.4 MB in bfloat16, within the 16 MB a shipped draft may take."""
    smollm2 = LlamaConfig(
        vocab_size=49152, num_layers=30, emb_dim=576, num_heads=9, num_kv_heads=3, head_dim=64,
        mlp_dim=1536, rope_theta=100000.0,
    )  # fmt: skip
    count = own_parameter_count(eagle_config(smollm2, 1))
    assert count == 2 * 576 * 576 + 576 * (9 + 3 + 3 + 9) * 64 + 3 * 576 * 1536 + 3 * 576
    assert 2 * count <= 16 * 2**20, count
