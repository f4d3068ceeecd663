"""seqio (the optional 'seqio' extra): Tasks over our own text and TSV files, and scripts/infer.py
over a registered task. Skipped without seqio, except under CI=true where it must run.

Vocabularies are trained here (``test_infer.train_vocabulary``), so nothing is downloaded. The
tokenization reference is ``spec_decode.t5x_compat.SentencePieceVocabulary``, which never
touches seqio or TensorFlow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from test_infer import LENGTHS, TEXTS, check_predictions, infer_command, write_run_files

EOS = 1
TASK_MODULE = """
from spec_decode.t5x_compat.seqio_tasks import register_text_task

register_text_task("spec_decode_test_lines", [{text!r}], {vocab!r})
"""


def test_text_and_tsv_tasks_tokenize_like_t5x(seqio, tmp_path):
    from test_infer import train_vocabulary

    from spec_decode.t5x_compat import SentencePieceVocabulary
    from spec_decode.t5x_compat.seqio_tasks import register_text_task, task_examples

    vocab_path = str(train_vocabulary(tmp_path))
    vocabulary = SentencePieceVocabulary(vocab_path)
    (tmp_path / "lines.txt").write_text("the fast draft model\nverify a token\n")
    # A header, a pair, an empty target, no tab at all, and a tab inside the target.
    (tmp_path / "pairs.tsv").write_text(
        "inputs\ttargets\nslow\tfast cache\nexact\t\nlone\nhead\tlayer\tcache\n"
    )
    register_text_task("sd_text", str(tmp_path / "lines.txt"), vocab_path, replace=True)
    register_text_task(
        "sd_tsv", [str(tmp_path / "*.tsv")], vocab_path, file_format="tsv",
        skip_header_lines=1, replace=True,
    )  # fmt: skip
    assert {"sd_text", "sd_tsv"} <= set(seqio.TaskRegistry.names())

    examples, task_vocabulary = task_examples("sd_text", "validation", {"inputs": 4, "targets": 4})
    assert [e["inputs"] for e in examples] == ["the fast draft model", "verify a token"]
    for example in examples:  # trimmed to 4 with EOS kept, as seqio's append_eos_after_trim
        assert example["input_ids"] == vocabulary.encode(example["inputs"])[:3] + [EOS]
    assert task_vocabulary.vocab_size == vocabulary.vocab_size
    assert task_vocabulary.eos_id == vocabulary.eos_id == EOS

    examples, _ = task_examples("sd_tsv", "validation", LENGTHS)
    assert [(e["inputs"], e["targets"]) for e in examples] == [
        ("slow", "fast cache"),
        ("exact", ""),
        ("lone", ""),
        ("head", "layer\tcache"),
    ]
    for example in examples:  # short enough: the whole input, then EOS
        assert example["input_ids"] == vocabulary.encode(example["inputs"]) + [EOS]

    with pytest.raises(ValueError, match="already registered"):
        register_text_task("sd_text", str(tmp_path / "lines.txt"), vocab_path)
    with pytest.raises(ValueError, match="file_format"):
        register_text_task("sd_csv", "x.csv", vocab_path, file_format="csv")
    with pytest.raises(ValueError, match="files"):
        register_text_task("sd_none", [], vocab_path)
    with pytest.raises(ValueError, match="no seqio task"):
        task_examples("no_such_task", "validation", LENGTHS)


def test_infer_script_over_a_registered_task(seqio, tmp_path):
    paths = write_run_files(tmp_path)
    lines = tmp_path / "lines.txt"
    lines.write_text("".join(text + "\n" for text in TEXTS))
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "sd_test_tasks.py").write_text(
        TASK_MODULE.format(text=str(lines), vocab=paths["vocab"])
    )
    output_dir = tmp_path / "out"
    command = infer_command(
        paths, output_dir, "--gin.MIXTURE_OR_TASK_NAME='spec_decode_test_lines'",
        "--gin.MIXTURE_OR_TASK_MODULE='sd_test_tasks'", "--gin.VOCABULARY_PATH=None",
    )  # fmt: skip
    path = os.pathsep.join(filter(None, [str(modules), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    # Each prediction is the target's greedy decode of our own tokenization of the line, so the
    # task tokenized exactly as infer.py's INPUT_FILE path does. seqio's vocabulary decodes the
    # ids past its pieces (T5 pads its embedding too) as UNK.
    vocabulary = seqio.SentencePieceVocabulary(paths["vocab"])
    check_predictions(output_dir, TEXTS, paths["vocab"], vocabulary)
    assert json.loads(done.stdout.strip().splitlines()[-1])["examples"] == len(TEXTS)


def test_core_imports_neither_seqio_nor_tensorflow():
    """TensorFlow takes seconds to import: only a seqio task may bring it in."""
    code = (
        "import sys, spec_decode, spec_decode.t5x_compat, spec_decode.formats.t5x, "
        "spec_decode.t5x_compat.seqio_tasks, spec_decode.t5x_compat.inference; "
        "print(sorted(m for m in ('seqio', 'tensorflow') if m in sys.modules))"
    )
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_missing_seqio_says_how_to_install(monkeypatch, tmp_path):
    from spec_decode.t5x_compat.seqio_tasks import register_text_task, task_examples

    monkeypatch.setitem(sys.modules, "seqio", None)  # makes `import seqio` raise ImportError
    with pytest.raises(ImportError, match=r"spec_decode\[seqio\]"):
        register_text_task("sd_text", "x.txt", str(tmp_path / "vocab.model"))
    with pytest.raises(ImportError, match=r"spec_decode\[seqio\]"):
        task_examples("sd_text", "validation", LENGTHS)
