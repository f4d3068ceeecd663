"""Training T5 on the corpus: vocabulary, batches, span corruption, T5X's loss, Adafactor."""

from spec_decode.train.data import TASKS, batches, corpus_file, read_pairs, shift_right, tokenize
from spec_decode.train.distill import DistillTrainer, divergence_sums
from spec_decode.train.loss import cross_entropy_sums
from spec_decode.train.optim import adafactor, rsqrt_schedule
from spec_decode.train.span_corruption import (
    pretraining_documents,
    span_corruption_batches,
    span_corruption_lengths,
)
from spec_decode.train.trainer import (
    T5Trainer,
    TrainConfig,
    TrainState,
    load_params,
    save_checkpoint,
)
from spec_decode.train.vocab import extra_id, load_vocabulary, train_vocabulary
from spec_decode.train.workers import worker_batches

__all__ = [
    "DistillTrainer",
    "TASKS",
    "T5Trainer",
    "TrainConfig",
    "TrainState",
    "adafactor",
    "batches",
    "corpus_file",
    "cross_entropy_sums",
    "divergence_sums",
    "extra_id",
    "load_params",
    "load_vocabulary",
    "pretraining_documents",
    "read_pairs",
    "rsqrt_schedule",
    "save_checkpoint",
    "shift_right",
    "span_corruption_batches",
    "span_corruption_lengths",
    "tokenize",
    "train_vocabulary",
    "worker_batches",
]
