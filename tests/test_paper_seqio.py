"""The corpus' seqio tasks (``register_corpus_tasks``) and scripts/infer.py over them. Skipped
without seqio, except under CI=true where it must run (the CI venv installs it)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from test_infer import infer_command, write_run_files

from spec_decode import train
from spec_decode.paper import write_smoke_corpus

EOS = 1


def test_corpus_tasks_read_each_split_with_the_task_prefix(seqio, tmp_path):
    from test_infer import train_vocabulary

    from spec_decode.t5x_compat import SentencePieceVocabulary
    from spec_decode.t5x_compat.seqio_tasks import register_corpus_tasks, task_examples

    corpus = write_smoke_corpus(tmp_path / "corpus")
    vocab_path = str(train_vocabulary(tmp_path))
    tasks = register_corpus_tasks(str(corpus), vocab_path, extra_ids=0)
    assert set(tasks) == {"spec_decode_translation_en_de", "spec_decode_summarization"}
    vocabulary = SentencePieceVocabulary(vocab_path)
    lengths = {"inputs": 64, "targets": 32}
    for task, name in (("translation_en_de", "spec_decode_translation_en_de"),
                       ("summarization", "spec_decode_summarization")):  # fmt: skip
        pairs = train.read_pairs(train.corpus_file(corpus, task, "test"), task)
        examples, _ = task_examples(name, "test", lengths)
        assert [(e["inputs"], e["targets"]) for e in examples] == pairs
        for example in examples:
            ids = vocabulary.encode(example["inputs"])[: lengths["inputs"] - 1]
            assert example["input_ids"] == ids + [EOS]
    with pytest.raises(ValueError, match="build_corpus.py"):
        register_corpus_tasks(str(tmp_path / "nowhere"), vocab_path)


def test_infer_script_over_the_corpus_task(seqio, tmp_path):
    paths = write_run_files(tmp_path)
    corpus = write_smoke_corpus(tmp_path / "corpus")
    output_dir = tmp_path / "out"
    command = infer_command(
        paths, output_dir, "--gin.MIXTURE_OR_TASK_NAME='spec_decode_translation_en_de'",
        "--gin.MIXTURE_OR_TASK_MODULE='spec_decode.t5x_compat.corpus_tasks'",
        "--gin.VOCABULARY_PATH=None", "--gin.SPLIT='test'",
    )  # fmt: skip
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "2",
           "SPEC_DECODE_CORPUS": str(corpus), "SPEC_DECODE_VOCABULARY": paths["vocab"],
           "SPEC_DECODE_EXTRA_IDS": "0"}  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [
        json.loads(line) for line in (output_dir / "predictions.jsonl").read_text().splitlines()
    ]
    pairs = train.read_pairs(train.corpus_file(corpus, "translation_en_de", "test"),
                             "translation_en_de")  # fmt: skip
    assert [r["inputs"] for r in rows] == [x for x, _ in pairs]
    assert all("alpha" in r["stats"] for r in rows)
