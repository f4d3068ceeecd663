"""The T5 trainer (spec_decode/train): loss, batches, vocabulary, checkpoints, bad arguments.

Every model here is a 1-layer T5 with D = 32 on CPU; the file runs in well under a minute.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_decode.models.t5 import T5Config
from spec_decode.train import (
    T5Trainer,
    TrainConfig,
    batches,
    corpus_file,
    cross_entropy_sums,
    extra_id,
    load_params,
    load_vocabulary,
    read_pairs,
    rsqrt_schedule,
    save_checkpoint,
    shift_right,
    tokenize,
    train_vocabulary,
)

V = 32
TINY = T5Config(
    vocab_size=V, emb_dim=32, num_heads=2, head_dim=16, mlp_dim=64, num_encoder_layers=1,
    num_decoder_layers=1, mlp_activations=("gelu", "linear"), dropout_rate=0.0,
)  # fmt: skip


def copy_examples(n: int, seed: int = 0):
    """Targets equal inputs: 2-6 random tokens (ids >= 3) and EOS."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        x = np.append(rng.integers(3, V, rng.integers(2, 7)), 1).astype(np.int32)
        rows.append((x, x.copy()))
    return rows


def test_loss_goes_down_on_a_copy_task():
    """40 Adafactor steps (batch 16, seed 0) cut the held-out loss by at least 10%."""
    trainer = T5Trainer(
        TINY, TrainConfig(steps=40, warmup_steps=10, eval_every=0, log_every=10, progress=False)
    )
    held_out = list(batches(copy_examples(32, seed=1), 16, 8, 8, seed=None, repeat=False))
    state = trainer.init_state(jax.random.key(0))
    before = trainer.evaluate(state.params, held_out)
    state, history = trainer.fit(state, batches(copy_examples(200), 16, 8, 8, seed=0), held_out)
    after = history["eval"][-1][1]
    assert int(state.step) == history["steps"] == 40
    assert after["tokens"] == before["tokens"] > 0
    assert after["loss"] < 0.9 * before["loss"], (before, after)
    assert all(np.isfinite(loss) for _, loss, _ in history["train"])


def test_the_time_budget_stops_training_and_starts_after_the_first_step():
    """1 ms after the first (compiled) step: a few more steps of 10,000, whatever the compile
    took."""
    config = TrainConfig(steps=10_000, train_seconds=1e-3, warmup_steps=10, progress=False)
    trainer = T5Trainer(TINY, config)  # equal to the copy task's: its compiled step is reused
    state = trainer.init_state(jax.random.key(0))
    state, history = trainer.fit(state, batches(copy_examples(40), 16, 8, 8))  # same shapes
    assert 2 <= history["steps"] == int(state.step) <= 50


def _hand_loss(logits, targets, weights, z_loss, smoothing):
    """Per-position T5X loss in float64 with explicit soft-target vectors."""
    logits = np.asarray(logits, np.float64)
    lse = np.log(np.exp(logits).sum(-1))
    V = logits.shape[-1]
    soft = np.full(logits.shape, smoothing / (V - 1))
    np.put_along_axis(soft, targets[..., None], 1 - smoothing, axis=-1)
    log_softmax = logits - lse[..., None]
    entropy = -np.sum(np.where(soft > 0, soft * np.log(np.where(soft > 0, soft, 1)), 0), -1)
    per_position = -np.sum(soft * log_softmax, -1) - entropy + z_loss * lse**2
    return np.sum(per_position * weights), np.sum(z_loss * lse**2 * weights)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_z_loss_label_smoothing_and_weights_match_a_hand_computation(smoothing):
    logits = jnp.array([[[2.0, 0.5, -1.0, 3.0], [0.0, 0.0, 0.0, 9.0], [5.0, -5.0, 1.0, 0.0]]])
    targets = np.array([[3, 1, 2]])
    weights = np.array([[1.0, 1.0, 0.0]])  # the last position is padding and must not count
    sums = cross_entropy_sums(logits, jnp.asarray(targets), jnp.asarray(weights), 1e-4, smoothing)
    loss, z = _hand_loss(logits, targets, weights, 1e-4, smoothing)
    np.testing.assert_allclose(float(sums["loss"]), loss, rtol=1e-6)
    np.testing.assert_allclose(float(sums["z_loss"]), z, rtol=1e-6)
    assert float(sums["weight"]) == 2.0 and float(sums["correct"]) == 1.0  # 3 right, 1 wrong
    assert z > 0  # the z-loss is in the total: without it the loss would be lower
    without = cross_entropy_sums(logits, jnp.asarray(targets), jnp.asarray(weights), 0.0, smoothing)
    np.testing.assert_allclose(float(sums["loss"] - without["loss"]), z, rtol=1e-5)


def test_schedule_is_t5x_rsqrt_decay():
    schedule = rsqrt_schedule(1.0, 10_000)
    np.testing.assert_allclose([schedule(s) for s in (0, 9_999, 40_000)], [0.01, 0.01, 0.005])
    warm = rsqrt_schedule(1.0, 100, linear_warmup=True)
    np.testing.assert_allclose([warm(50), warm(400)], [0.05, 0.05])


def test_constant_schedule_is_t5x_fine_tuning():
    trainer = T5Trainer(TINY, TrainConfig(schedule="constant", base_learning_rate=1e-3))
    np.testing.assert_allclose([trainer.schedule(s) for s in (0, 10, 10**6)], [1e-3] * 3)


def test_padded_batches_have_the_shapes_and_the_shift():
    examples = copy_examples(20)
    batch = next(batches(examples, 4, 8, 7, seed=3))
    for name, width in [("encoder_input_tokens", 8), ("decoder_target_tokens", 7)]:
        assert batch[name].shape == (4, width) and batch[name].dtype == np.int32
    targets = batch["decoder_target_tokens"]
    assert (batch["decoder_input_tokens"][:, 0] == 0).all()
    np.testing.assert_array_equal(batch["decoder_input_tokens"][:, 1:], targets[:, :-1])
    np.testing.assert_array_equal(batch["decoder_loss_weights"], targets > 0)
    again = next(batches(examples, 4, 8, 7, seed=3))
    np.testing.assert_array_equal(again["encoder_input_tokens"], batch["encoder_input_tokens"])
    epochs = batches(examples, 20, 8, 7, seed=3)  # one batch per epoch: epoch 2 reshuffles
    first, second = next(epochs), next(epochs)
    assert not np.array_equal(first["encoder_input_tokens"], second["encoder_input_tokens"])
    assert sorted(map(tuple, first["encoder_input_tokens"])) == sorted(
        map(tuple, second["encoder_input_tokens"])
    )


def test_packed_batches_follow_the_docstring_example():
    a, c = np.array([5, 6, 1], np.int32), np.array([7, 1], np.int32)
    batch = next(batches([(a, a), (c, c)], 1, 6, 6, seed=None, pack=True, repeat=False))
    np.testing.assert_array_equal(batch["decoder_target_tokens"], [[5, 6, 1, 7, 1, 0]])
    np.testing.assert_array_equal(batch["decoder_segment_ids"], [[1, 1, 1, 2, 2, 0]])
    np.testing.assert_array_equal(batch["decoder_input_tokens"], [[0, 5, 6, 0, 7, 0]])
    np.testing.assert_array_equal(batch["decoder_positions"], [[0, 1, 2, 0, 1, 0]])
    np.testing.assert_array_equal(batch["decoder_loss_weights"], [[1, 1, 1, 1, 1, 0]])
    np.testing.assert_array_equal(
        shift_right(batch["decoder_target_tokens"]), [[0, 5, 6, 1, 7, 1]]
    )  # without segments the shift crosses the boundary


def test_eval_batches_are_one_pass_with_empty_rows_at_the_end():
    examples = copy_examples(10)
    out = list(batches(examples, 4, 8, 8, seed=None, repeat=False))
    assert len(out) == 3
    assert (out[-1]["decoder_loss_weights"][2:] == 0).all()
    assert sum(int(b["decoder_loss_weights"].sum()) for b in out) == sum(
        len(y) for _, y in examples
    )


@pytest.fixture(scope="module")
def vocab_path(tmp_path_factory):
    rng = np.random.default_rng(0)
    words = ["haus", "maus", "katze", "hund", "garten", "baum", "wasser", "feuer", "erde", "licht"]
    lines = [" ".join(rng.choice(words, rng.integers(3, 9))) for _ in range(300)]
    prefix = tmp_path_factory.mktemp("vocab") / "spm"
    return train_vocabulary(lines, prefix, vocab_size=280, byte_fallback=True)


def test_vocabulary_has_t5s_ids_byte_fallback_and_extra_ids_at_the_top(vocab_path):
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_file=vocab_path)
    assert processor.id_to_piece([0, 1, 2]) == ["<pad>", "</s>", "<unk>"]
    assert processor.bos_id() == -1 and processor.get_piece_size() == 280
    vocabulary = load_vocabulary(vocab_path, extra_ids=4)
    assert (vocabulary.pad_id, vocabulary.eos_id, vocabulary.unk_id) == (0, 1, 2)
    assert vocabulary.vocab_size == 284
    assert [extra_id(i, vocabulary) for i in (0, 3)] == [283, 280]
    ids = vocabulary.encode("haus €")  # '€' never occurs in training: bytes, not UNK
    assert 2 not in ids and vocabulary.decode(ids) == "haus €"


def test_corpus_records_become_prefixed_pairs_cut_to_length_with_eos(tmp_path, vocab_path):
    path = corpus_file(tmp_path, "translation_en_de", "train")
    records = [{"en": "haus maus", "de": "katze hund garten baum", "group": "g"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    pairs = read_pairs(path, "translation_en_de")
    assert pairs == [("translate English to German: haus maus", "katze hund garten baum")]
    [(x, y)] = tokenize(pairs, load_vocabulary(vocab_path), 64, 3)
    assert len(y) == 3 and y[-1] == 1 and x[-1] == 1 and len(x) <= 64


def test_dropout_is_used_only_with_a_key():
    params = T5Trainer(TINY).init_state(jax.random.key(0)).params
    trainer = T5Trainer(T5Config(**{**TINY.__dict__, "dropout_rate": 0.5}))
    batch = next(batches(copy_examples(4), 2, 8, 8))
    logits = jax.jit(trainer.logits)
    plain = logits(params, batch)
    k1 = logits(params, batch, jax.random.key(1))
    np.testing.assert_array_equal(k1, logits(params, batch, jax.random.key(1)))
    assert not np.allclose(plain, k1)


@pytest.mark.parametrize("fmt", ["orbax", "legacy"])
def test_checkpoint_round_trip_gives_identical_params_and_logits(tmp_path, fmt):
    trainer = T5Trainer(TINY)
    params = trainer.init_state(jax.random.key(2)).params
    path = save_checkpoint(params, tmp_path, step=7, fmt=fmt)
    assert path.endswith("checkpoint_7")
    loaded = load_params(path, TINY)
    flat, treedef = jax.tree.flatten(params)
    loaded_flat, loaded_treedef = jax.tree.flatten(loaded)
    assert treedef == loaded_treedef
    for a, b in zip(flat, loaded_flat, strict=True):
        np.testing.assert_array_equal(a, b)
    batch = next(batches(copy_examples(4), 2, 8, 8))
    np.testing.assert_array_equal(trainer.logits(params, batch), trainer.logits(loaded, batch))


BAD = [
    ("steps", lambda: TrainConfig(steps=0)),
    ("train_seconds", lambda: TrainConfig(train_seconds=-1.0)),
    ("label_smoothing", lambda: TrainConfig(label_smoothing=1.0)),
    ("loss_normalizing_factor", lambda: TrainConfig(loss_normalizing_factor=0.0)),
    ("schedule", lambda: TrainConfig(schedule="cosine")),
    ("warmup_steps", lambda: rsqrt_schedule(1.0, 0)),
    ("base_learning_rate", lambda: rsqrt_schedule(0.0)),
    ("batch_size", lambda: next(batches(copy_examples(4), 0, 8, 8))),
    ("batch_size", lambda: next(batches(copy_examples(4), 8, 8, 8))),  # no whole batch
    ("max_target_length", lambda: next(batches(copy_examples(4), 2, 8, 1))),
    ("max_input_length", lambda: next(batches(copy_examples(4), 2, 3, 8))),  # too long
    ("task", lambda: corpus_file("/tmp", "translation_de_en", "train")),
    ("split", lambda: corpus_file("/tmp", "summarization", "dev")),
    ("vocab_size", lambda: train_vocabulary(["a b"], "/tmp/never", vocab_size=100)),
    ("vocab_size", lambda: train_vocabulary(["abc def"], "/tmp/never", vocab_size=260)),  # chars
    ("fmt", lambda: save_checkpoint({"a": np.zeros(1)}, "/tmp/never", 0, fmt="zarr")),
]


@pytest.mark.parametrize("name,call", BAD, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BAD)])
def test_bad_arguments_raise_value_errors_naming_them(name, call):
    with pytest.raises(ValueError, match=name):
        call()


def test_extra_id_out_of_range(vocab_path):
    with pytest.raises(ValueError, match="index"):
        extra_id(4, load_vocabulary(vocab_path, extra_ids=4))


def test_bfloat16_activations_keep_float32_params():
    trainer = T5Trainer(T5Config(**{**TINY.__dict__, "dtype": "bfloat16"}))
    state = trainer.init_state(
        jax.random.key(0), T5Trainer(TINY).init_state(jax.random.key(0)).params
    )
    state, sums = trainer.train_step(state, next(batches(copy_examples(16), 16, 8, 8)))
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(state.params))
    assert np.isfinite(float(sums["loss"])) and int(state.step) == 1
