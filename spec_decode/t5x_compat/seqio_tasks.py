"""seqio Tasks over your own text or TSV files (the optional 'seqio' extra).

    from spec_decode.t5x_compat.seqio_tasks import register_text_task
    register_text_task("my_inputs", ["data/*.txt"], "sentencepiece.model")
    # scripts/infer.py ... --gin.MIXTURE_OR_TASK_NAME="'my_inputs'" \
    #     --gin.MIXTURE_OR_TASK_MODULE="'my_tasks'"     (the module that registers it)

A text file holds one input per line; a TSV file one ``inputs<TAB>targets`` per line (targets
optional). Both features are tokenized with the SentencePiece model and end with EOS, trimmed
to the requested lengths, as T5X's tasks are. seqio (and TensorFlow) are imported only here and
only when called, so the rest of spec_decode never needs them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

FORMATS = ("text", "tsv")


def _seqio():
    try:
        import seqio
    except ImportError as error:
        raise ImportError(
            "seqio tasks need the 'seqio' extra: pip install 'spec_decode[seqio]' (it installs "
            f"seqio, TensorFlow and tensorflow-text); import failed with: {error}"
        ) from error
    return seqio


def register_text_task(
    name: str,
    files: str | Sequence[str],
    vocab_path: str,
    *,
    file_format: str = "text",
    split: str = "validation",
    extra_ids: int = 0,
    skip_header_lines: int = 0,
    replace: bool = False,
) -> Any:
    """Register and return a seqio Task reading ``files`` (paths or glob patterns).

    Args:
      name: the task name (``MIXTURE_OR_TASK_NAME``).
      files: one pattern or several; all are read as ``split``.
      vocab_path: a SentencePiece model file for both features.
      file_format: 'text' (one input per line) or 'tsv' (inputs TAB targets).
      split: the split name the files are served under.
      extra_ids: sentinel ids after the SentencePiece pieces (T5's vocabulary uses 100).
      skip_header_lines: lines to skip at the top of each file (a TSV header).
      replace: replace a task already registered under ``name`` instead of failing.
    """
    seqio = _seqio()
    import tensorflow as tf

    if file_format not in FORMATS:
        raise ValueError(f"file_format={file_format!r} is not allowed: it must be one of {FORMATS}")
    patterns = [files] if isinstance(files, str) else list(files)
    if not patterns:
        raise ValueError("files=[] is not allowed: give at least one file or glob pattern")
    if name in seqio.TaskRegistry.names():
        if not replace:
            raise ValueError(
                f"name={name!r} is not allowed: a seqio task of that name is already registered "
                "(pass replace=True to replace it)"
            )
        seqio.TaskRegistry.remove(name)

    def parse(dataset):
        def to_features(line):
            if file_format == "text":
                return {"inputs": line, "targets": tf.constant("")}
            fields = tf.strings.split(line, "\t", maxsplit=1)
            targets = tf.cond(tf.size(fields) > 1, lambda: fields[-1], lambda: tf.constant(""))
            return {"inputs": fields[0], "targets": targets}

        return dataset.map(to_features, num_parallel_calls=tf.data.AUTOTUNE)

    vocabulary = seqio.SentencePieceVocabulary(vocab_path, extra_ids=extra_ids)
    return seqio.TaskRegistry.add(
        name,
        source=seqio.TextLineDataSource(
            split_to_filepattern={split: patterns}, skip_header_lines=skip_header_lines
        ),
        preprocessors=[
            parse,
            seqio.preprocessors.tokenize,
            seqio.preprocessors.append_eos_after_trim,
        ],
        output_features={
            "inputs": seqio.Feature(vocabulary, add_eos=True),
            "targets": seqio.Feature(vocabulary, add_eos=True),
        },
    )


def task_examples(
    name: str, split: str, lengths: Mapping[str, int]
) -> tuple[list[dict[str, Any]], Any]:
    """(examples {'inputs', 'targets', 'input_ids'} in order, the task's targets vocabulary).

    ``name`` may be any registered seqio task or mixture; ``lengths`` are
    {'inputs': S, 'targets': L} (seqio trims to them).
    """
    seqio = _seqio()
    try:
        task = seqio.get_mixture_or_task(name)
    except ValueError as error:
        raise ValueError(
            f"mixture_or_task_name={name!r} is not allowed: no seqio task or mixture of that name "
            "is registered (set MIXTURE_OR_TASK_MODULE to the module that registers it)"
        ) from error
    dataset = task.get_dataset(
        sequence_length=dict(lengths), split=split, shuffle=False, use_cached=False, seed=0
    )
    examples = []
    for features in dataset.as_numpy_iterator():
        examples.append(
            {
                "inputs": _text(features.get("inputs_pretokenized")),
                "targets": _text(features.get("targets_pretokenized")),
                "input_ids": [int(t) for t in features["inputs"]],
            }
        )
    return examples, task.output_features["targets"].vocabulary


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


CORPUS_TASKS = {"translation_en_de": "spec_decode_translation_en_de",
                "summarization": "spec_decode_summarization"}  # fmt: skip


def register_corpus_tasks(
    corpus_dir: str, vocab_path: str, *, extra_ids: int = 100, replace: bool = True
) -> dict[str, Any]:
    """Register ``spec_decode_translation_en_de`` and ``spec_decode_summarization`` over the
    corpus that ``scripts/build_corpus.py`` writes; returns {task name: seqio Task}.

    Each split (train, validation, test) is ``<corpus_dir>/<task>.<split>.jsonl``; the inputs
    get T5's task prefix ('translate English to German: ', 'summarize: ') as in training
    (``spec_decode.train.TASKS``), and both features are tokenized with the SentencePiece model
    at ``vocab_path`` plus ``extra_ids`` sentinels, ending with EOS.
    """
    import json
    from pathlib import Path

    from spec_decode.train.data import TASKS, corpus_file

    seqio = _seqio()
    import tensorflow as tf

    tasks = {}
    for task, name in CORPUS_TASKS.items():
        files = {split: corpus_file(corpus_dir, task, split) for split in
                 ("train", "validation", "test")}  # fmt: skip
        missing = [str(path) for path in files.values() if not Path(path).is_file()]
        if missing:
            raise ValueError(
                f"corpus_dir={corpus_dir!r} is not allowed: it lacks {', '.join(missing)}; build "
                f"it with `python scripts/build_corpus.py --out {corpus_dir}`"
            )
        spec = TASKS[task]

        def dataset_fn(split, shuffle_files=False, seed=None, files=files, spec=spec):
            del shuffle_files, seed  # one file per split, read in order

            def rows():
                with open(files[split], encoding="utf-8") as f:
                    for line in f:
                        if line.strip():
                            row = json.loads(line)
                            yield {"inputs": spec.prefix + row[spec.inputs],
                                   "targets": row[spec.targets]}  # fmt: skip

            signature = {key: tf.TensorSpec((), tf.string) for key in ("inputs", "targets")}
            return tf.data.Dataset.from_generator(rows, output_signature=signature)

        if name in seqio.TaskRegistry.names():
            if not replace:
                raise ValueError(
                    f"a seqio task named {name!r} is already registered (pass replace=True)"
                )
            seqio.TaskRegistry.remove(name)
        vocabulary = seqio.SentencePieceVocabulary(vocab_path, extra_ids=extra_ids)
        tasks[name] = seqio.TaskRegistry.add(
            name,
            source=seqio.FunctionDataSource(dataset_fn, splits=tuple(files)),
            preprocessors=[seqio.preprocessors.tokenize, seqio.preprocessors.append_eos_after_trim],
            output_features={
                "inputs": seqio.Feature(vocabulary, add_eos=True),
                "targets": seqio.Feature(vocabulary, add_eos=True),
            },
        )
    return tasks
