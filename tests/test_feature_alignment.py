"""Every feature the loop hands a feature-reading draft is the target's, and in its place.

- An oracle draft whose logits are the target's only when each feature it is handed equals the
  target's hidden state one position back (zeros at position 0), and a sure rejection
  otherwise, accepts every draft: greedy exactly (alpha 1), sampling all but rounding. Rounds
  accept all gamma (gamma + 1 positions re-read), EOS and max_new_tokens stop rows, and runs of
  gamma-0 rounds leave the draft behind to be caught up from the buffer.
- The invariant between rounds, checked after every round of a stream: the feature buffer holds
  the target's hidden states of the committed tokens below the target's length, and the draft's
  cache is what a fresh pass over the committed tokens with the target's true features gives
  (accepted positions are re-read, never kept from the draft's own predictions).
"""

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from test_auto_gamma import ScriptedPolicy
from test_feature_draft import (
    COSTS,
    LENGTHS,
    PROMPTS,
    TARGET,
    TARGET_PARAMS,
    _assert_same_tokens,
    _eagle,
    _greedy_target,
)

from spec_decode import DecoderParams, SamplingConfig, SpeculativeDecoder
from spec_decode.core.features import read_before, write_features
from spec_decode.models import LlamaCache, LlamaLM


@struct.dataclass
class OracleCache:
    kv: LlamaCache
    hidden: jax.Array  # [B, L, D]: the target's hidden state at each position it was given
    lengths: jax.Array  # [B]


@dataclasses.dataclass(frozen=True)
class FeatureOracle:
    """The target as a feature draft that checks the features it is handed: its logits are the
    target's when each feature equals the target's hidden state one position back (zeros at
    position 0), and rolled by one token otherwise (another argmax: a sure rejection)."""

    target: LlamaLM

    vocab_size = property(lambda self: self.target.vocab_size)
    max_length = property(lambda self: self.target.max_length)
    feature_dim = property(lambda self: self.target.feature_dim)

    def init_cache(self, params, batch_size, max_length):
        kv = self.target.init_cache(params, batch_size, max_length)
        hidden = jnp.zeros((batch_size, max_length, self.feature_dim))
        return OracleCache(kv, hidden, kv.lengths)

    def cache_logical_axes(self):
        raise NotImplementedError  # no mesh in these tests

    def extend(self, params, tokens, cache):
        raise AssertionError("the decoder must call extend_conditioned")

    def extend_conditioned(self, params, tokens, features, cache):
        lengths = cache.lengths
        kv = cache.kv.replace(lengths=lengths)
        logits, hidden, kv = self.target.extend_features(params, tokens, kv)
        buffer = write_features(cache.hidden, hidden, lengths)
        true = read_before(buffer, lengths[:, None] + jnp.arange(tokens.shape[1]))
        wrong = jnp.max(jnp.abs(features - true), axis=-1) > 1e-3  # [B, K]
        logits = jnp.where(wrong[..., None], jnp.roll(logits, 1, axis=-1), logits)
        return logits, hidden, OracleCache(kv, buffer, lengths + tokens.shape[1])


@pytest.mark.parametrize(("gamma", "temperature"), [(3, 0.0), ("auto", 0.0)])
def test_every_feature_handed_over_is_the_targets(gamma, temperature):
    """alpha 1 (greedy) / > 0.999 (sampling): rounds accept all gamma (num_pending = gamma + 1
    re-read), EOS and max_new_tokens stop rows, gamma-0 runs leave the oracle behind."""
    policy = ScriptedPolicy(COSTS, script=(0, 0, 2, 0, 1, 2)) if gamma == "auto" else None
    sampling = SamplingConfig(temperature=temperature)
    decoder = SpeculativeDecoder(
        TARGET, FeatureOracle(TARGET), gamma, max_new_tokens=24, sampling=sampling, eos_id=1,
        policy=policy,
    )  # fmt: skip
    got = decoder.run(DecoderParams(TARGET_PARAMS, TARGET_PARAMS), PROMPTS, LENGTHS)
    alpha = got.summary()["alpha"]
    if temperature == 0:
        _assert_same_tokens(got, _greedy_target())
        assert alpha == 1.0
    else:
        assert alpha > 0.999, alpha
        assert got.summary()["accepted_tokens"] > 20


def _committed(state, width):
    """[B, width] committed tokens (prompt, then generated), zero-padded; the target length."""
    num_generated = np.asarray(state.num_generated)
    sequences = np.zeros((len(LENGTHS), width), np.int32)
    for b, (p, n) in enumerate(zip(LENGTHS, num_generated, strict=True)):
        sequences[b, :p] = PROMPTS[b, :p]
        sequences[b, p : p + n] = np.asarray(state.tokens)[b, :n]
    return sequences, LENGTHS + num_generated - 1


@pytest.mark.parametrize("gamma", [3, "auto"])
def test_between_rounds_the_draft_holds_only_true_features(gamma):
    draft, params = _eagle()
    policy = ScriptedPolicy(COSTS, script=(0, 0, 2, 1, 0, 2)) if gamma == "auto" else None
    decoder = SpeculativeDecoder(
        TARGET, draft, gamma, max_new_tokens=20, sampling=SamplingConfig(temperature=1.0),
        policy=policy,
    )  # fmt: skip
    width = 6 + 20 + 4

    @jax.jit
    def fresh(sequences):  # the target's hidden states; the draft's cache read with them
        hidden = TARGET.forward_hidden(TARGET_PARAMS, sequences)  # [B, W, D]
        positions = jnp.broadcast_to(jnp.arange(width), sequences.shape)
        cache = draft.init_cache(params, len(LENGTHS), width)
        _, _, cache = draft.extend_conditioned(
            params, sequences, read_before(hidden, positions), cache
        )
        return hidden, cache

    stream = decoder.stream(DecoderParams(TARGET_PARAMS, params), PROMPTS, LENGTHS, 5)
    checked, pending = 0, set()
    for _ in itertools.chain([None], stream):  # after init, then after every round
        state = jax.device_get(stream.state)  # numpy: one transfer, then plain indexing
        sequences, target_lengths = _committed(state, width)
        hidden, cache = jax.device_get(fresh(jnp.asarray(sequences)))
        for b in np.flatnonzero(~state.done):  # done rows are frozen mid-round
            t, d = target_lengths[b], state.draft_cache.lengths[b]
            assert state.target_cache.lengths[b] == t
            assert 0 <= t - d  # with gamma "auto" plain steps leave the draft further behind
            if gamma != "auto":
                assert t - d <= gamma and state.num_pending[b] == t - d + 1
            pending.add(int(t - d + 1))
            np.testing.assert_allclose(state.features[b, :t], hidden[b, :t], atol=1e-4)
            for name in ("k", "v"):
                np.testing.assert_allclose(
                    getattr(state.draft_cache, name)[:, b, :d],
                    getattr(cache, name)[:, b, :d],
                    atol=1e-4,
                    err_msg=name,
                )
            checked += 1
    assert checked > 20 and max(pending) >= 3, (checked, pending)  # accepted tokens re-read
