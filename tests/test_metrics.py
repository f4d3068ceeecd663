"""Quality scores (spec_decode/train/metrics.py): greedy predictions, BLEU, ROUGE, baselines."""

import sys

import jax
import numpy as np
import pytest

from spec_decode.models.t5 import T5Config
from spec_decode.train import T5Trainer
from spec_decode.train.metrics import baseline_predictions, predict, score

V = 40
TINY = T5Config(
    vocab_size=V, emb_dim=32, num_heads=2, head_dim=16, mlp_dim=64, num_encoder_layers=1,
    num_decoder_layers=1, mlp_activations=("gelu", "linear"), dropout_rate=0.0,
)  # fmt: skip


class WordVocabulary:
    """Each word -> one id in 3..V-1 (by its letters); ids decode to their numbers."""

    eos_id, pad_id, extra_ids, vocab_size = 1, 0, 0, V

    def encode(self, text):
        return [3 + sum(map(ord, w)) % (V - 3) for w in text.split()]

    def decode(self, ids):
        ids = list(ids)
        return " ".join(map(str, ids[: ids.index(1)] if 1 in ids else ids))


def greedy_oracle(trainer, params, source, steps):
    """Argmax of a full teacher-forced forward pass, one token at a time (no cache).

    Fixed widths, so it compiles once: the source padded to 16 (masked), the decoder row to
    steps + 1 (causal attention: later slots do not change earlier logits).
    """
    logits = jax.jit(trainer.logits)
    encoder = np.zeros((1, 16), np.int32)
    encoder[0, : len(source)] = source
    decoder = np.zeros((1, steps + 1), np.int32)  # BOS 0, then the tokens so far
    out = []
    for t in range(steps):
        batch = {"encoder_input_tokens": encoder, "decoder_input_tokens": decoder,
                 "decoder_target_tokens": np.ones_like(decoder)}  # fmt: skip
        out.append(int(np.argmax(logits(params, batch)[0, t])))
        decoder[0, t + 1] = out[-1]
        if out[-1] == 1:
            break
    return out


def test_predictions_are_the_greedy_decode_of_a_full_forward_pass():
    vocabulary = WordVocabulary()
    trainer = T5Trainer(TINY)
    params = trainer.init_state(jax.random.key(3)).params
    inputs = ["a house", "the small red garden is here", "water"]
    predictions = predict(TINY, params, vocabulary, inputs, "translation_en_de",
                          batch_size=2, max_new_tokens=6)  # fmt: skip
    assert any(predictions)  # not all empty (an immediate EOS would prove little)
    prefix = "translate English to German: "
    for text, prediction in zip(inputs, predictions, strict=True):
        source = [*vocabulary.encode(prefix + text), 1]
        assert prediction == vocabulary.decode(greedy_oracle(trainer, params, source, 6))
    # Rows do not depend on their batch (or on its padding rows), nor on a prefix given twice.
    alone = predict(TINY, params, vocabulary, [prefix + inputs[2]], "translation_en_de",
                    batch_size=1, max_new_tokens=6)  # fmt: skip
    assert alone == predictions[2:]


def test_bleu_and_rouge_reach_100_on_the_references_and_0_on_disjoint_text():
    references = ["das Haus ist klein", "der Hund und die Katze sind alt"]
    assert score("translation_en_de", references, references)["bleu"] == pytest.approx(100)
    assert score("translation_en_de", ["x y z w", "q r s t u"], references)["bleu"] < 1
    same = score("summarization", references, references)
    assert set(same) == {"rouge1", "rouge2", "rougeLsum"}
    assert all(v == pytest.approx(100) for v in same.values())
    assert all(v == 0 for v in score("summarization", ["x y", "q r"], references).values())


def test_rouge_is_the_mean_f_measure_of_unigram_and_bigram_overlap():
    # 'the cat sat' vs 'the cat ran': 2 of 3 unigrams (F 66.7), 1 of 2 bigrams (F 50);
    # identical second pair: 100 each; means 83.3 and 75. The stemmer maps 'cats' to 'cat'.
    got = score("summarization", ["the cat sat", "cats"], ["the cat ran", "cat"])
    assert got["rouge1"] == pytest.approx((200 / 3 + 100) / 2)
    assert got["rouge2"] == pytest.approx((50 + 0) / 2)  # one word has no bigram


def test_baselines_copy_the_input_or_take_its_first_words():
    text = "A tool to convert documents between many markup formats quickly"
    assert baseline_predictions("translation_en_de", [text]) == [text]
    assert baseline_predictions("translation_en_de", ["translate English to German: " + text]) == [
        text
    ]
    assert baseline_predictions("summarization", ["summarize: " + text]) == [
        "A tool to convert documents between many"
    ]
    assert baseline_predictions("summarization", [text], words=2) == ["A tool"]


def test_a_missing_extra_names_the_package_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sacrebleu", None)
    with pytest.raises(ImportError, match=r"spec_decode\[paper\]"):
        score("translation_en_de", ["a"], ["a"])


BAD = [
    ("task", lambda: score("translation_de_en", ["a"], ["a"])),
    ("predictions", lambda: score("summarization", ["a"], [])),
    ("words", lambda: baseline_predictions("summarization", ["a b"], words=0)),
    (
        "batch_size",
        lambda: predict(
            TINY, {}, WordVocabulary(), ["a"], "summarization", batch_size=0, max_new_tokens=2
        ),
    ),  # fmt: skip
    (
        "max_new_tokens",
        lambda: predict(
            TINY, {}, WordVocabulary(), ["a"], "summarization", batch_size=1, max_new_tokens=0
        ),
    ),  # fmt: skip
]


@pytest.mark.parametrize("name,call", BAD, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BAD)])
def test_bad_arguments_raise_value_errors_naming_them(name, call):
    with pytest.raises(ValueError, match=name):
        call()
