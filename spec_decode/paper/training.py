"""The training stages' units: the shared vocabulary, span-corruption pre-training once per
model, fine-tuning per task and model, distillation of one draft per task.

Each unit trains one model within its ``Budget`` and writes ``<dir>/checkpoint_<step>`` (T5X's
Orbax format) and ``<dir>/done.json`` (what it did, read back by later stages). The
pre-training batches come from ``spec_decode.train.span_corruption`` and distillation is
``spec_decode.train.distill.DistillTrainer`` (both T5 recipes of the ``train`` package).
"""

from __future__ import annotations

import dataclasses
import zlib
from functools import partial
from pathlib import Path
from typing import Any

import jax

from spec_decode import train
from spec_decode.models.t5 import T5Config
from spec_decode.paper.config import Budget, PaperConfig


def vocab_rows(vocabulary) -> int:
    """Embedding rows: the vocabulary's ids rounded up to a multiple of 128 (T5 1.1: 32128)."""
    return -(-vocabulary.vocab_size // 128) * 128


def model_config(config: PaperConfig, name: str, vocabulary, dropout: float = 0.0) -> T5Config:
    """The named model with the shared vocabulary's rows and the given dropout."""
    return dataclasses.replace(
        config.models[name], vocab_size=vocab_rows(vocabulary), dropout_rate=dropout
    )


def init_key(config: PaperConfig, name: str) -> jax.Array:
    """Each model's own initialisation key (two models of one shape still start apart); the
    key is traced, so models of one shape share the compiled init and step."""
    return jax.random.fold_in(jax.random.key(config.seed), zlib.crc32(name.encode()))


def train_config(budget: Budget, seed: int, eval_every: int = 0, progress: bool = True):
    return train.TrainConfig(
        steps=budget.steps, train_seconds=budget.seconds, schedule=budget.schedule,
        base_learning_rate=budget.base_learning_rate, warmup_steps=budget.warmup_steps,
        eval_every=eval_every, log_every=min(100, budget.steps), seed=seed, progress=progress,
    )  # fmt: skip


def summary(params, directory: Path, history: dict, **extra) -> dict[str, Any]:
    """Save the params as ``<directory>/checkpoint_<steps>``; the unit's done.json record."""
    steps = int(history["steps"])
    path = train.save_checkpoint(params, directory, steps)
    return {
        "checkpoint": path,
        "steps": steps,
        "seconds": history["seconds"],
        "first_step_seconds": history.get("first_step_seconds"),
        "train_loss": history["train"][-1][1] if history["train"] else None,
        "eval": history["eval"][-1][1] if history.get("eval") else None,
        **extra,
    }


def pretrain(config: PaperConfig, name: str, corpus: str, vocabulary, directory: Path,
             progress: bool = True) -> dict[str, Any]:  # fmt: skip
    """Span corruption on all the training text (``pretraining_documents``) from random init,
    its batches made in ``config.data_workers`` processes (0: this one)."""
    budget = config.budget("pretrain", name)
    model = model_config(config, name, vocabulary, budget.dropout)
    stream = partial(
        span_corruption_stream, corpus, vocabulary.sentencepiece_model_file,
        vocabulary.extra_ids, budget.batch_size, config.pretrain_length,
    )  # fmt: skip
    if config.data_workers:
        batches = train.worker_batches(stream, workers=config.data_workers, seed=config.seed)
    else:
        batches = stream(config.seed)
    trainer = train.T5Trainer(model, train_config(budget, config.seed, progress=progress))
    state = trainer.init_state(init_key(config, name))
    try:
        state, history = trainer.fit(state, iter(batches))
    finally:
        batches.close()  # stops the workers
    return summary(state.params, directory, history, model=name, objective="span_corruption")


def span_corruption_stream(corpus: str, vocabulary_file: str, extra_ids: int, batch_size: int,
                           input_length: int, seed: int):  # fmt: skip
    """The pre-training batches of one stream (a worker's: everything it needs pickles)."""
    from spec_decode.train.span_corruption import pretraining_documents, span_corruption_batches

    vocabulary = train.load_vocabulary(vocabulary_file, extra_ids=extra_ids)
    return span_corruption_batches(
        pretraining_documents(corpus), vocabulary, batch_size=batch_size,
        input_length=input_length, seed=seed,
    )  # fmt: skip


def finetune(config: PaperConfig, name: str, data, init_checkpoint: str | None, directory: Path,
             progress: bool = True) -> dict[str, Any]:  # fmt: skip
    """Fine-tune one model on one task from its pre-trained checkpoint (None: random init).

    ``data`` is the task's ``TaskData`` (tokenized training examples and validation batches).
    """
    budget = config.budget("finetune", name)
    model = model_config(config, name, data.vocabulary, budget.dropout)
    trainer = train.T5Trainer(
        model, train_config(budget, config.seed, eval_every=0, progress=progress)
    )
    params = None if init_checkpoint is None else train.load_params(init_checkpoint, model)
    state = trainer.init_state(jax.random.key(config.seed), params)
    stream = train.batches(
        data.train, budget.batch_size, config.max_input_length, config.max_target_length,
        seed=config.seed,
    )  # fmt: skip
    state, history = trainer.fit(state, stream, data.eval_batches(budget.batch_size))
    return summary(state.params, directory, history, model=name, init_checkpoint=init_checkpoint)


def distill(config: PaperConfig, data, teacher_checkpoint: str, student_checkpoint: str,
            directory: Path, progress: bool = True) -> dict[str, Any]:  # fmt: skip
    """Distil ``config.distill_draft`` (from its fine-tuned checkpoint) from the task's target.

    ``train.distill.DistillTrainer``: DistillSpec's forward KL on the training targets, or
    on-policy (TVD on the student's own samples), as ``config.distill_objective`` says.
    """
    from spec_decode.train.distill import DistillTrainer

    budget = config.budget("distill", config.distill_draft)
    teacher = model_config(config, config.target, data.vocabulary)
    student = model_config(config, config.distill_draft, data.vocabulary, budget.dropout)
    trainer = DistillTrainer(
        student, train_config(budget, config.seed, progress=progress), teacher_config=teacher,
        teacher_params=train.load_params(teacher_checkpoint, teacher),
        kind=config.distill_objective, sample_seed=config.seed,
    )  # fmt: skip
    state = trainer.init_state(
        jax.random.key(config.seed), train.load_params(student_checkpoint, student)
    )
    stream = train.batches(
        data.train, budget.batch_size, config.max_input_length, config.max_target_length,
        seed=config.seed + 1,
    )  # fmt: skip
    state, history = trainer.fit(state, stream, data.eval_batches(budget.batch_size))
    return summary(
        state.params, directory, history, model=config.distill_draft, teacher=teacher_checkpoint,
        init_checkpoint=student_checkpoint, objective=config.distill_objective,
    )  # fmt: skip
