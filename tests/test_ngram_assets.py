"""The n-gram tables: what the distillation writes is what the registry and the CLI read.

- Round trip: ``save_ngram_tables`` then ``load_ngram_table`` gives the same arrays, and a table
  counted over another vocabulary is refused with a message saying so (no model needed).
- Through the CLI on SmolLM2: tables counted by the library function ``distill_draft.py`` calls,
  written into a temporary directory and named by ``SPEC_DECODE_NGRAM_DIR``, are the params
  ``--draft bigram`` decodes with; greedy speculative decoding with them equals greedy
  autoregressive decoding; a directory without tables is a clear error naming it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_cli import run

from spec_decode.app import registry
from spec_decode.distill import ngrams

CORPUS = [[1, 2, 3, 2, 3, 4], [5, 2, 3, 6], [7, 7, 2, 3]]


@pytest.fixture
def fresh_drafts():
    """Drafts loaded before (from other directories) must not answer for this test's tables."""
    registry._load_draft_cached.cache_clear()
    yield
    registry._load_draft_cached.cache_clear()


def test_tables_round_trip_and_a_vocabulary_mismatch_is_refused(tmp_path):
    tables = ngrams.count_ngram_tables(CORPUS, vocab_size=12, top_m=3)
    ngrams.save_ngram_tables(tables, tmp_path / "tables")
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == ["bigram.npz", "unigram.npz"]
    for name in ngrams.TABLES:
        loaded = ngrams.load_ngram_table(tmp_path / "tables", name, vocab_size=12)
        assert set(loaded) == set(tables[name])
        for key, array in tables[name].items():
            np.testing.assert_array_equal(loaded[key], array)
    with pytest.raises(ValueError, match="counted for another target"):
        ngrams.load_ngram_table(tmp_path / "tables", "bigram", vocab_size=13)
    with pytest.raises(FileNotFoundError, match="no unigram table"):
        ngrams.load_ngram_table(tmp_path, "unigram", vocab_size=12)
    with pytest.raises(ValueError, match="trigram"):
        ngrams.save_ngram_tables({"trigram": {}}, tmp_path)


def test_cli_decodes_with_tables_from_the_named_directory(
    smollm2, tmp_path, monkeypatch, capsys, fresh_drafts
):
    model, _, tokenizer = smollm2
    corpus = [tokenizer.encode(text) for text in (
        "The sky is blue because air scatters blue light more than red light.",
        "A color is what the eye sees of light: red, green, blue, yellow.",
    )]  # fmt: skip
    tables = ngrams.count_ngram_tables(corpus, model.vocab_size, top_m=4)
    directory = tmp_path / "smollm2_ngrams"
    ngrams.save_ngram_tables(tables, directory)
    monkeypatch.setenv(registry.NGRAM_DIR_ENV, str(directory))

    target = registry.load_target("smollm2-135m")
    draft, params = registry.load_draft("bigram", target)
    assert draft.top_m == 4
    np.testing.assert_array_equal(params["next_tokens"], tables["bigram"]["next_tokens"])

    common = ["generate", "--prompt", "Name a color.", "--json", "--temperature", "0",
              "--max-new-tokens", "8"]  # fmt: skip
    code, out, err = run(common + ["--draft", "bigram", "--gamma", "3"], capsys)
    assert code == 0, err
    speculative = json.loads(out)
    assert speculative["stats"]["target_calls"] >= 1
    code, out, err = run(common + ["--mode", "autoregressive"], capsys)
    assert code == 0, err
    assert speculative["tokens"] == json.loads(out)["tokens"]


def test_cli_names_the_directory_without_tables(
    smollm2, tmp_path, monkeypatch, capsys, fresh_drafts
):
    monkeypatch.setenv(registry.NGRAM_DIR_ENV, str(tmp_path))
    code, _, err = run(["generate", "--prompt", "x", "--draft", "unigram"], capsys)
    assert code == 2
    assert "draft='unigram' is not available" in err and str(tmp_path) in err, err
    assert registry.NGRAM_DIR_ENV in err, err
