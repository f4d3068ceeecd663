"""The shared-embedding draft, its training and checkpoints; the shipped SmolLM2 draft."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_decode import SamplingConfig, adjusted_probs, autoregressive_decode, speculative_decode
from spec_decode.distill import checkpoint
from spec_decode.distill.data import chat_prompts, sample_user_messages
from spec_decode.distill.prompts import (
    HELD_OUT_TOPICS,
    TRAIN_TEMPLATES,
    TRAIN_TOPICS,
    held_out_prompts,
    mentions_held_out,
    topic_prompts,
    vocabulary_topics,
)
from spec_decode.distill.train import train
from spec_decode.drafts.neural import SharedEmbeddingDraft, init_draft, with_head_rows
from spec_decode.models import LlamaConfig, LlamaLM

V = 64


def _config(layers):
    return LlamaConfig(vocab_size=V, num_layers=layers, emb_dim=32, num_heads=4, num_kv_heads=2,
                       head_dim=8, mlp_dim=64, max_length=128)  # fmt: skip


TARGET = LlamaLM(_config(2))
TARGET_PARAMS = TARGET.init(jax.random.key(0))
TOKENS = jnp.asarray(np.random.default_rng(0).integers(0, V, (2, 9)), jnp.int32)


def test_subset_head_obeys_the_contract():
    """q = 0 outside the subset, a proper distribution, K-token extend == singles == forward."""
    draft = SharedEmbeddingDraft(_config(1))
    subset = jnp.arange(0, V, 2)
    params = init_draft(draft.body, TARGET_PARAMS, subset, jax.random.key(1))
    full = draft.forward(params, TOKENS)  # [B, T, V]
    assert np.isneginf(np.asarray(full[..., 1::2])).all()
    probs = adjusted_probs(full, SamplingConfig(temperature=1.0))
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    cache = draft.init_cache(params, 2, 16)
    chunked, cache = draft.extend(params, TOKENS[:, :5], cache)
    singles = []
    for i in range(5, 9):
        logits, cache = draft.extend(params, TOKENS[:, i : i + 1], cache)
        singles.append(logits)
    cached = jnp.concatenate([chunked] + singles, axis=1)
    finite = np.isfinite(np.asarray(full))
    np.testing.assert_allclose(np.asarray(cached)[finite], np.asarray(full)[finite], atol=1e-4)


def test_head_rows_gathered_once_give_the_same_logits():
    draft = SharedEmbeddingDraft(_config(1))
    params = init_draft(draft.body, TARGET_PARAMS, jnp.arange(3, V, 3), jax.random.key(1))
    gathered = with_head_rows(params, jnp.float32)
    assert gathered["head"].shape == (len(params["subset"]), draft.body.emb_dim)
    cache = draft.init_cache(params, 2, 16)
    np.testing.assert_array_equal(
        draft.extend(gathered, TOKENS, cache)[0], draft.extend(params, TOKENS, cache)[0]
    )
    full = init_draft(draft.body, TARGET_PARAMS, jnp.arange(V), jax.random.key(1))
    assert "head" not in with_head_rows(full)  # no second copy of the whole table


def test_full_draft_from_every_target_layer_is_the_target():
    """Initialised from all target layers with the full head, the draft computes the target."""
    draft = SharedEmbeddingDraft(_config(2))
    params = init_draft(draft.body, TARGET_PARAMS, jnp.arange(V), jax.random.key(1))
    np.testing.assert_allclose(
        draft.forward(params, TOKENS), TARGET.forward(TARGET_PARAMS, TOKENS), atol=1e-5
    )


def test_a_draft_started_from_a_fused_target_is_the_one_from_its_canonical_layout():
    # on a GPU the registry fuses the target's q/k/v and gate/up: the draft stays canonical
    draft = SharedEmbeddingDraft(_config(2))
    fused = TARGET.fuse_params(TARGET_PARAMS)
    key = jax.random.key(1)
    got = init_draft(draft.body, fused, jnp.arange(V), key)
    want = init_draft(draft.body, TARGET_PARAMS, jnp.arange(V), key)
    assert jax.tree.structure(got) == jax.tree.structure(want)
    jax.tree.map(np.testing.assert_array_equal, got, want)
    np.testing.assert_allclose(
        draft.forward(got, TOKENS), TARGET.fused.forward(fused, TOKENS), atol=1e-5
    )


def test_training_lowers_the_loss_and_checkpoint_round_trips(tmp_path):
    draft = SharedEmbeddingDraft(_config(1))
    params = init_draft(draft.body, TARGET_PARAMS, jnp.arange(48), jax.random.key(2))
    sequences = np.asarray(jax.random.randint(jax.random.key(3), (16, 12), 0, V), np.int32)
    lengths = np.full((16,), 12, np.int32)
    trained, losses = train(TARGET, TARGET_PARAMS, draft, params, sequences, lengths,
                            steps=40, batch=8, learning_rate=3e-3)  # fmt: skip
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    size = checkpoint.save_draft(draft, trained, tmp_path, {"note": "test"})
    assert 0 < size <= checkpoint.MAX_BYTES
    loaded_draft, loaded = checkpoint.load_draft(TARGET_PARAMS, tmp_path)
    assert loaded_draft == draft
    # Weights are stored in float16: compare against the float16-rounded originals.
    rounded = jax.tree.map(lambda a: a.astype(jnp.float16).astype(jnp.float32), trained)
    rounded["body"]["embed"] = trained["body"]["embed"]
    rounded["subset"] = trained["subset"]
    np.testing.assert_allclose(
        loaded_draft.forward(loaded, TOKENS), draft.forward(rounded, TOKENS), atol=1e-5
    )


def test_missing_draft_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no draft weights"):
        checkpoint.load_draft(TARGET_PARAMS, tmp_path)


def test_held_out_prompts_share_no_topic_with_training():
    assert not set(TRAIN_TOPICS) & set(HELD_OUT_TOPICS)


@pytest.mark.slow
def test_shipped_draft_is_exact_and_accepts_far_above_chance(smollm2):
    """The committed draft: <= 16 MB, greedy speculative == greedy target on held-out prompts,
    and alpha >= 0.25 there (a random draft scores ~0.0; the trained one ~0.45 on the H200)."""
    model, params, tokenizer = smollm2
    assert (checkpoint.ASSET_DIR / "weights.npz").stat().st_size <= checkpoint.MAX_BYTES
    draft, draft_params = checkpoint.load_draft(params, dtype=model.config.dtype)
    prompts, lengths = chat_prompts(tokenizer, held_out_prompts()[:3])
    common = dict(max_new_tokens=24, sampling=SamplingConfig(temperature=0.0))
    spec = speculative_decode(model, params, draft, draft_params, jnp.asarray(prompts),
                              jnp.asarray(lengths), gamma=4, **common)  # fmt: skip
    plain = autoregressive_decode(model, params, jnp.asarray(prompts), jnp.asarray(lengths),
                                  **common)  # fmt: skip
    np.testing.assert_array_equal(spec.tokens, plain.tokens)
    assert spec.summary()["alpha"] >= 0.25


def test_every_held_out_topic_is_caught_and_vocabulary_topics_avoid_them():
    assert all(mentions_held_out(topic.upper()) for topic in HELD_OUT_TOPICS)
    assert not any(mentions_held_out(topic) for topic in TRAIN_TOPICS)
    vocab = ["Ġdeserts", "Ġoctopus", "Ġvolcano", "Ġlantern", "Ġa", "Ġ123456", "ĠCapital", "plain"]
    assert vocabulary_topics(vocab, 2) == ["lantern", "volcano"]
    with pytest.raises(ValueError, match="count=3"):
        vocabulary_topics(vocab, 3)
    prompts = topic_prompts(["lantern", "volcano"])
    assert all(any(p == t.format(w) for t in TRAIN_TEMPLATES) for p, w in
               zip(prompts, ["lantern", "volcano"], strict=True))  # fmt: skip


class _CharTokenizer:
    """Characters as token ids (2..V-1); 1 ends a turn; a one-line chat template."""

    eos_id, pad_id = 1, 0

    def apply_chat_template(self, messages, add_generation_prompt=True):
        text = "".join(f"<{m['role']}>{m['content']}|" for m in messages)
        return text + ("<assistant>" if add_generation_prompt else "")

    def encode(self, text):
        return [2 + ord(c) % (V - 2) for c in text]

    def decode(self, ids, skip_special_tokens=False):
        return "".join(chr(ord("a") + (i - 2) % 26) for i in ids)

    def chat(self, messages):
        return self.encode(self.apply_chat_template(messages))


def test_sampled_user_messages_start_with_their_openings_and_prompt_width_is_enforced():
    tokenizer = _CharTokenizer()
    messages = sample_user_messages(TARGET, TARGET_PARAMS, tokenizer, 5,
                                    openings=("", "Say"), max_tokens=6, batch=4)  # fmt: skip
    assert len(messages) == 5
    assert [m.startswith("Say") for m in messages] == [False, True, False, True, False]
    assert all(0 < len(m) <= 9 for m in messages)
    tokens, lengths = chat_prompts(tokenizer, ["ab", "abcd"], width=24)
    assert tokens.shape == (2, 24) and list(lengths) == [20, 22]
    with pytest.raises(ValueError, match="width=21"):
        chat_prompts(tokenizer, ["ab", "abcd"], width=21)


def test_training_to_a_time_budget_stops_early_but_completes_its_schedule():
    draft = SharedEmbeddingDraft(_config(1))
    params = init_draft(draft.body, TARGET_PARAMS, jnp.arange(V), jax.random.key(2))
    sequences = np.asarray(jax.random.randint(jax.random.key(3), (8, 12), 0, V), np.int32)
    lengths = np.full((8,), 12, np.int32)
    _, losses = train(TARGET, TARGET_PARAMS, draft, params, sequences, lengths,
                      steps=100_000, batch=4, seconds=0.5)  # fmt: skip
    assert 11 < len(losses) < 100_000
    # A budget that fits no more than the timing probe: the schedule (warm-up included)
    # shrinks to the 12 steps taken rather than failing.
    _, losses = train(TARGET, TARGET_PARAMS, draft, params, sequences, lengths,
                      steps=100_000, batch=4, seconds=1e-9)  # fmt: skip
    assert len(losses) == 12


def test_bfloat16_target_trains_a_float32_draft_and_bad_steps_are_skipped_then_fatal():
    """The draft keeps float32 weights under a bfloat16 target; a batch whose gradients are
    not finite is skipped (the weights stay finite), and 20 such steps in a row raise."""
    target = LlamaLM(dataclasses.replace(_config(2), dtype="bfloat16", param_dtype="bfloat16"))
    target_params = jax.tree.map(lambda a: a.astype(jnp.bfloat16), TARGET_PARAMS)
    body = dataclasses.replace(_config(1), dtype="bfloat16")
    draft = SharedEmbeddingDraft(body)
    params = init_draft(body, target_params, jnp.arange(V - 1), jax.random.key(2))
    assert {a.dtype for a in jax.tree.leaves(params["body"]["layers"])} == {jnp.dtype("float32")}
    poisoned = dict(target_params, embed={"embedding": target_params["embed"]["embedding"]
                                          .at[V - 1].set(jnp.nan)})  # fmt: skip
    rng = np.random.default_rng(4)
    clean = rng.integers(0, V - 1, (8, 12)).astype(np.int32)
    mixed = np.concatenate([clean, np.full((8, 12), V - 1, np.int32)])
    lengths = np.full((16,), 12, np.int32)
    trained, losses = train(target, poisoned, draft, params, mixed, lengths, steps=30, batch=1)
    assert not np.isfinite(losses).all() and np.isfinite(losses).any()
    assert all(np.isfinite(a).all() for a in jax.tree.leaves(trained))
    with pytest.raises(FloatingPointError, match="steps in a row had non-finite gradients"):
        train(target, poisoned, draft, params, mixed[8:], lengths[8:], steps=200, batch=1)
