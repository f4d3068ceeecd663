"""The reproduction as resumable stages over one work directory.

    run = Pipeline(config, corpus="/data/corpus", work="/data/work", results="docs/paper")
    run.run(["vocab", "pretrain", "finetune"])      # any subset, in STAGES order

Every stage is made of units (one model, one task, one draft); a unit writes its outputs and
then ``done.json``, and is skipped when ``done.json`` exists, so a stopped run resumes at the
first unfinished unit. With ``call_seconds`` no unit starts unless its training budget still
fits (``OutOfTime``: run the same command again). Outputs under ``work``:

    vocab/spm.model, vocab/done.json                    the shared SentencePiece vocabulary
    pretrain/<model>/checkpoint_<n>, done.json          span corruption, once per model size
    finetune/<task>/<model>/checkpoint_<n>, done.json   target and drafts, dropout from config
    distill/<task>/<draft>_distilled/...                one draft distilled from the target
    quality/<task>/done.json                            BLEU / ROUGE of each model and baseline
    measure/<task>/<draft or baseline>/done.json        Tables 2 and 3's numbers
    measure_cpu/<task>/<draft or baseline>/done.json    the same timed on the CPU cores
    projection/t5_scale.json                            (optional) scripts/benchmark_t5_scale.py
and under ``results``: results.json, table2.md, table3.md, quality.md, figure3_<task>.png.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from spec_decode import train
from spec_decode.paper import paper_numbers, training
from spec_decode.paper.config import PaperConfig

STAGES = (
    "vocab", "pretrain", "finetune", "distill", "quality", "measure", "measure_cpu", "report",
)  # fmt: skip
SPLITS = ("train", "validation", "test")


class OutOfTime(Exception):
    """The call's time is spent before a unit could start; run the same command again."""


@dataclasses.dataclass
class TaskData:
    """One task's tokenized splits with the shared vocabulary."""

    task: str
    vocabulary: Any
    train: list
    validation: list
    test_pairs: list[tuple[str, str]]
    S: int
    T: int

    def eval_batches(self, batch_size: int) -> list[dict]:
        return list(train.batches(self.validation, batch_size, self.S, self.T, seed=None,
                                  repeat=False))  # fmt: skip

    def test_tokens(self, count: int) -> np.ndarray:
        """Encoder inputs [N, S] of the first ``count`` test pairs (0 = padding)."""
        examples = train.tokenize(self.test_pairs[:count], self.vocabulary, self.S, self.T)
        tokens = np.zeros((len(examples), self.S), np.int32)
        for row, (ids, _) in enumerate(examples):
            tokens[row, : len(ids)] = ids
        return tokens


def check_stages(stages: Sequence[str]) -> list[str]:
    """The stages in pipeline order; an unknown name is a ValueError."""
    unknown = [s for s in stages if s not in STAGES]
    if unknown or not stages:
        raise ValueError(
            f"stages={','.join(stages)!r} is not allowed: choose among {','.join(STAGES)}"
        )
    return [s for s in STAGES if s in stages]


def check_corpus(corpus: str | Path, tasks: Sequence[str]) -> None:
    """Every task's split files exist, else a ValueError naming the command that builds them."""
    missing = [
        str(train.corpus_file(corpus, task, split))
        for task in tasks
        for split in SPLITS
        if not train.corpus_file(corpus, task, split).is_file()
    ]
    if missing:
        raise ValueError(
            f"corpus={str(corpus)!r} is not allowed: it lacks {', '.join(missing)}; build it "
            f"with `python scripts/build_corpus.py --out {corpus}`"
        )


class Pipeline:
    """One run: the config, the corpus, the work and results directories."""

    def __init__(self, config: PaperConfig, corpus, work, results=None, *,
                 call_seconds: float | None = None, progress: bool = True):  # fmt: skip
        check_corpus(corpus, config.tasks)
        self.config = config
        self.corpus = str(corpus)
        self.work = Path(work)
        self.results = Path(results) if results is not None else self.work / "results"
        self.call_seconds = call_seconds
        self.progress = progress
        self.start = time.perf_counter()
        self.log: list[str] = []

    # Units and their records.

    def unit(self, directory: Path, seconds: float | None, fn) -> dict[str, Any]:
        """``fn()``'s record, written to ``directory/done.json``; skipped when that exists."""
        done = directory / "done.json"
        if done.exists():
            self.log.append(f"skip {directory.relative_to(self.work)}")
            return json.loads(done.read_text())
        if self.call_seconds is not None:
            left = self.call_seconds - (time.perf_counter() - self.start)
            if left <= (seconds or 0):
                raise OutOfTime(
                    f"{directory.relative_to(self.work)} needs {seconds} s, {left:.0f} left"
                )
        directory.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        record = fn(directory)
        seconds = time.perf_counter() - start
        record = {**record, "unit_seconds": seconds}  # with loading, compiling and saving
        done.write_text(json.dumps(record, indent=1, default=str))
        self.log.append(f"done {directory.relative_to(self.work)} in {seconds:.1f} s")
        return record

    def record(self, *parts: str) -> dict[str, Any]:
        """A finished unit's record; a ValueError saying which stage makes it when missing."""
        done = self.work.joinpath(*parts, "done.json")
        if not done.exists():
            raise ValueError(
                f"{done} does not exist: run the {parts[0]!r} stage first (--stages {parts[0]})"
            )
        return json.loads(done.read_text())

    def run(self, stages: Sequence[str]) -> list[str]:
        """Run the stages (``check_stages``) in order; returns the log of done / skipped units."""
        for stage in check_stages(stages):
            getattr(self, f"stage_{stage}")()
        return self.log

    # Data.

    @cached_property
    def vocabulary(self):
        path = self.record("vocab")["path"]
        return train.load_vocabulary(path, extra_ids=self.config.extra_ids)

    def pairs(self, task: str, split: str) -> list[tuple[str, str]]:
        pairs = train.read_pairs(train.corpus_file(self.corpus, task, split), task)
        limit = {"train": self.config.train_examples, "validation": self.config.eval_examples,
                 "test": self.config.test_examples}[split]  # fmt: skip
        return pairs if limit is None else pairs[:limit]

    def data(self, task: str) -> TaskData:
        cache = self.__dict__.setdefault("_data", {})
        if task not in cache:
            c = self.config
            S, T = c.max_input_length, c.max_target_length
            cache[task] = TaskData(
                task, self.vocabulary,
                train.tokenize(self.pairs(task, "train"), self.vocabulary, S, T),
                train.tokenize(self.pairs(task, "validation"), self.vocabulary, S, T),
                self.pairs(task, "test"), S, T,
            )  # fmt: skip
        return cache[task]

    # Training stages.

    def stage_vocab(self) -> None:
        def build(directory: Path) -> dict:
            texts = [t for task in self.config.tasks for p in self.pairs(task, "train") for t in p]
            path = train.train_vocabulary(texts, directory / "spm", self.config.vocab_size,
                                          seed=self.config.seed)  # fmt: skip
            vocabulary = train.load_vocabulary(path, extra_ids=self.config.extra_ids)
            return {"path": path, "ids": vocabulary.vocab_size, "sentences": len(texts)}

        self.unit(self.work / "vocab", None, build)

    def stage_pretrain(self) -> None:
        for name in self.config.model_names:
            self.unit(
                self.work / "pretrain" / name, self.config.budget("pretrain", name).seconds,
                lambda d, name=name: training.pretrain(
                    self.config, name, self.corpus, self.vocabulary, d, self.progress
                ),
            )  # fmt: skip

    def stage_finetune(self) -> None:
        for task in self.config.tasks:
            for name in self.config.model_names:
                init = None
                if self.config.pretrained:
                    init = self.record("pretrain", name)["checkpoint"]
                seconds = self.config.budget("finetune", name).seconds
                self.unit(
                    self.work / "finetune" / task / name, seconds,
                    lambda d, task=task, name=name, init=init: training.finetune(
                        self.config, name, self.data(task), init, d, self.progress
                    ),
                )  # fmt: skip

    def stage_distill(self) -> None:
        c = self.config
        if c.distill_draft is None:
            return
        for task in c.tasks:
            teacher = self.record("finetune", task, c.target)["checkpoint"]
            student = self.record("finetune", task, c.distill_draft)["checkpoint"]
            self.unit(
                self.work / "distill" / task / c.distilled_name,
                c.budget("distill", c.distill_draft).seconds,
                lambda d, task=task, teacher=teacher, student=student: training.distill(
                    c, self.data(task), teacher, student, d, self.progress
                ),
            )  # fmt: skip

    def t5_models(self, task: str) -> dict[str, tuple[str, str]]:
        """name -> (model config name, fine-tuned or distilled checkpoint) of every T5 model."""
        c = self.config
        models = {n: (n, self.record("finetune", task, n)["checkpoint"]) for n in c.model_names}
        distilled = self.work / "distill" / task / str(c.distilled_name) / "done.json"
        if c.distill_draft is not None and distilled.exists():  # the stage may not have run
            path = json.loads(distilled.read_text())["checkpoint"]
            models[c.distilled_name] = (c.distill_draft, path)
        return models

    def load(self, config_name: str, checkpoint: str, dtype: str | None = None):
        """(T5Decoding, params) of a checkpoint, with activations in ``dtype`` if given."""
        from spec_decode.models.t5 import T5Decoding

        model = training.model_config(self.config, config_name, self.vocabulary)
        if dtype is not None:
            model = dataclasses.replace(model, dtype=dtype)
        # Parameters are float32 whatever the activations: one read per checkpoint.
        loaded = self.__dict__.setdefault("_params", {})
        if checkpoint not in loaded:
            loaded[checkpoint] = train.load_params(checkpoint, model)
        return T5Decoding(model), loaded[checkpoint]

    # Quality, measurement, report: in stages.py's functions.

    def stage_quality(self) -> None:
        from spec_decode.paper import stages

        stages.quality(self)

    def stage_measure(self) -> None:
        from spec_decode.paper import stages

        stages.measure_all(self)

    def stage_measure_cpu(self) -> None:
        from spec_decode.paper import stages

        stages.measure_cpu(self)

    def stage_report(self) -> None:
        from spec_decode.paper import stages

        stages.report(self)


def measured_gammas(config: PaperConfig, task: str, paper_draft: str | None) -> list[int]:
    """The configured gammas, the paper's for this draft's counterpart, and ``ngram_gamma``."""
    gammas = set(config.gammas) | {config.ngram_gamma}
    for temperature in config.temperatures:
        row = paper_numbers.table2_row(task, paper_draft, temperature)
        if row is not None:
            gammas.add(row[0])
    return sorted(gammas)
