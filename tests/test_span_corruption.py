"""T5's span corruption (spec_decode/train/span_corruption.py): properties of its batches.

A stand-in vocabulary (ids written as text, 1000 pieces + extra ids) keeps this file fast;
one test uses a real SentencePiece model.
"""

import json

import numpy as np
import pytest

from spec_decode.train import extra_id, load_vocabulary, train_vocabulary
from spec_decode.train.span_corruption import (
    corrupt,
    noise_mask,
    pretraining_documents,
    span_corruption_batches,
    span_corruption_examples,
    span_corruption_lengths,
    uncorrupt,
)


class IdVocabulary:
    """'5 17 9' -> [5, 17, 9]: pieces 0..999 (EOS 1), then the extra ids (extra_id_0 on top)."""

    eos_id, pad_id = 1, 0

    def __init__(self, extra_ids=100):
        self.extra_ids, self.vocab_size = extra_ids, 1000 + extra_ids

    def encode(self, text):
        return [int(t) for t in text.split()]


VOCAB = IdVocabulary()
SMALL = IdVocabulary(extra_ids=8)  # too few sentinels for 512 inputs (28 spans)


def documents(n, seed=0):
    rng = np.random.default_rng(seed)
    return [" ".join(map(str, rng.integers(3, 100, rng.integers(5, 60)))) for _ in range(n)]


def test_the_chunk_length_follows_t5s_arithmetic_and_fills_the_inputs():
    assert span_corruption_lengths(512) == (568, 114)  # the module docstring's worked numbers
    for S in (16, 32, 100, 512, 1024):
        n, T = span_corruption_lengths(S)
        x, y = corrupt(np.arange(n) + 3, noise_mask(n, np.random.default_rng(0)), VOCAB)
        assert len(x) <= S and len(y) == T
        # n is the largest chunk that fits: one token more overflows the inputs.
        bigger = corrupt(np.arange(n + 1) + 3, noise_mask(n + 1, np.random.default_rng(0)), VOCAB)
        assert len(bigger[0]) > S or S == 16  # (16 is too short for 3-token spans to round)


def test_expanding_the_sentinels_gives_back_the_raw_tokens():
    rng = np.random.default_rng(1)
    for n in [2, 3, 7, 20, 34, 60]:
        tokens = rng.integers(3, 100, n)
        x, y = corrupt(tokens, noise_mask(n, rng), VOCAB)
        assert x[-1] == y[-1] == VOCAB.eos_id
        assert uncorrupt(x, y, VOCAB) == list(tokens)


def test_the_stream_is_the_documents_concatenated_in_a_shuffled_order():
    docs = documents(30)
    stream = span_corruption_examples(docs, VOCAB, input_length=32, seed=3)
    total = sum(len(d.split()) for d in docs)
    raw = []
    while len(raw) < total:
        raw += uncorrupt(*next(stream), VOCAB)
    assert len(raw) == total  # the epoch ends with its own (short) chunk
    assert sorted(raw) == sorted(t for d in docs for t in VOCAB.encode(d))
    # Each document is one contiguous run of the stream (documents are tokens, no separators).
    text = " " + " ".join(map(str, raw)) + " "
    assert all(f" {d} " in text for d in docs)
    assert raw != [t for d in docs for t in VOCAB.encode(d)]  # not the file order


def test_sentinels_descend_from_extra_id_0_and_are_distinct():
    stream = span_corruption_examples(documents(20), VOCAB, input_length=64, seed=0)
    for _ in range(30):
        x, y = next(stream)
        in_x = [int(t) for t in x if t >= 1000]
        in_y = [int(t) for t in y if t >= 1000]
        assert in_x == in_y == [extra_id(i, VOCAB) for i in range(len(in_x))]
        assert in_x and len(set(in_x)) == len(in_x)
        assert y[0] == extra_id(0, VOCAB)  # non-noise comes first, so targets open with <0>


def test_the_noise_fraction_and_span_length_are_near_t5s():
    rng = np.random.default_rng(2)
    masks = [noise_mask(568, rng) for _ in range(300)]
    noise = np.concatenate(masks)
    assert abs(noise.mean() - 0.15) < 0.005
    spans = sum(int((m[1:] & ~m[:-1]).sum()) for m in masks)
    assert abs(noise.sum() / spans - 3.0) < 0.1
    assert not any(m[0] for m in masks)


@pytest.mark.parametrize("pack", [False, True])
def test_batches_have_the_trainers_keys_fit_their_lengths_and_repeat_for_a_seed(pack):
    S, (_, T) = 40, span_corruption_lengths(40)
    make = lambda seed: span_corruption_batches(
        documents(25), VOCAB, batch_size=4, input_length=S, seed=seed, pack=pack
    )
    stream, again = make(5), make(5)
    keys = {"encoder_input_tokens", "decoder_target_tokens", "decoder_input_tokens",
            "decoder_loss_weights"}  # fmt: skip
    if pack:
        keys |= {"encoder_segment_ids", "decoder_segment_ids", "encoder_positions",
                 "decoder_positions"}  # fmt: skip
    for _ in range(12):
        batch, other = next(stream), next(again)
        assert set(batch) == keys
        assert batch["encoder_input_tokens"].shape == (4, S)
        assert batch["decoder_target_tokens"].shape == (4, T)
        for name in batch:
            np.testing.assert_array_equal(batch[name], other[name])
    different = next(make(6))["encoder_input_tokens"]
    assert not np.array_equal(different, next(make(5))["encoder_input_tokens"])


def test_short_chunks_are_packed_several_to_a_row():
    """Epochs of 12 tokens (one short chunk, 4 target tokens) for S = 40, T = 10: 2 a row."""
    docs = ["3 4 5 6", "7 8 9 10 11", "12 13 14"]
    batch = next(span_corruption_batches(docs, VOCAB, batch_size=2, input_length=40))
    segments = batch["encoder_segment_ids"]
    assert (segments.max(axis=1) == 2).all()
    for row in range(2):  # every packed segment reconstructs on its own: one whole epoch
        for s in range(1, segments[row].max() + 1):
            x = batch["encoder_input_tokens"][row][segments[row] == s]
            y = batch["decoder_target_tokens"][row][batch["decoder_segment_ids"][row] == s]
            assert sorted(uncorrupt(x, y, VOCAB)) == list(range(3, 15))


def test_a_sentencepiece_vocabulary_round_trips(tmp_path):
    words = ["haus", "maus", "katze", "hund", "garten", "baum", "wasser", "feuer", "erde"]
    rng = np.random.default_rng(0)
    lines = [" ".join(rng.choice(words, rng.integers(3, 12))) for _ in range(200)]
    vocabulary = load_vocabulary(train_vocabulary(lines, tmp_path / "spm", 280), extra_ids=4)
    x, y = next(span_corruption_examples(lines, vocabulary, input_length=32))
    assert len(x) == 32 and x[-1] == 1
    raw = uncorrupt(x, y, vocabulary)
    assert len(raw) == span_corruption_lengths(32)[0]
    assert set(vocabulary.decode(raw).split()[1:-1]) <= set(words)  # cut at both ends


def test_pretraining_documents_read_train_splits_only(tmp_path):
    (tmp_path / "text_en.train.txt").write_text("first doc\nline two\n\nsecond doc\n\n")
    (tmp_path / "text_en.test.txt").write_text("secret test\n\n")
    rows = {"translation_en_de": ("de", "ein Haus"), "translation_en_fr": ("fr", "une maison"),
            "docstrings": ("docstring", "Return the house.")}  # fmt: skip
    for name, (field, text) in rows.items():
        for split in ("train", "validation"):
            row = {"en": "a house", field: text if split == "train" else f"held out {split}"}
            (tmp_path / f"{name}.{split}.jsonl").write_text(json.dumps(row) + "\n" * 2)
    docs = pretraining_documents(tmp_path)
    assert docs == ["first doc\nline two", "second doc", "ein Haus", "une maison",
                    "Return the house."]  # fmt: skip
    with pytest.raises(ValueError, match="corpus_dir"):
        pretraining_documents(tmp_path / "missing")


BAD = [
    ("input_length", lambda: span_corruption_lengths(2)),
    ("noise_density", lambda: span_corruption_lengths(32, noise_density=1.0)),
    ("mean_noise_span_length", lambda: span_corruption_lengths(32, mean_noise_span_length=0.5)),
    (
        "batch_size",
        lambda: next(span_corruption_batches(["3 4"], VOCAB, batch_size=0, input_length=8)),
    ),  # fmt: skip
    ("documents", lambda: next(span_corruption_examples([], VOCAB, input_length=8))),
    ("input_length", lambda: next(span_corruption_examples(["3 4"], SMALL, input_length=512))),
]


@pytest.mark.parametrize("name,call", BAD, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BAD)])
def test_bad_arguments_raise_value_errors_naming_them(name, call):
    with pytest.raises(ValueError, match=name):
        call()
