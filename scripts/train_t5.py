"""Train a T5 on one task of the corpus that ``scripts/build_corpus.py`` writes.

    python scripts/build_corpus.py --out /data/corpus
    python scripts/train_t5.py --corpus /data/corpus --task translation_en_de \\
      --model-dir /ckpts/t5_1_1_base_en_de --gin-file t5_1_1/base.gin --config T5_1_1_BASE \\
      --steps 100000 --train-seconds 7200 --batch-size 128 --pack
    python scripts/train_t5.py --smoke --model-dir /tmp/t5_smoke     # tiny, CPU, < 60 s

    # pre-train with T5's span corruption on all the corpus' training text, then fine-tune
    python scripts/train_t5.py --corpus /data/corpus --objective span_corruption \
      --model-dir /ckpts/pre --max-input-length 512 --pack ...
    python scripts/train_t5.py --corpus /data/corpus --task translation_en_de \
      --init-checkpoint /ckpts/pre --vocab /ckpts/pre/vocab/spm.model --eval-quality 1000 ...

    # distil a small draft from a trained target (DistillSpec: on-policy samples, TVD)
    python scripts/train_t5.py --corpus /data/corpus --task translation_en_de \
      --teacher-checkpoint /ckpts/base_en_de --teacher-gin-file t5_1_1/base.gin \
      --teacher-config T5_1_1_BASE --distill on_policy --vocab /ckpts/pre/vocab/spm.model ...

The model's dimensions come from a shipped gin file's T5Config macro (``configs/t5_1_1/``);
its vocab_size becomes the vocabulary's ids (pieces + extra ids) rounded up to a multiple of
128, and --dropout / --dtype override the file's. Without --vocab a SentencePiece vocabulary
is trained on the task's training text (both sides; with --objective span_corruption, on the
pre-training text) into ``<model-dir>/vocab/spm.model``.

--objective span_corruption pre-trains on ``span_corruption.pretraining_documents(--corpus)``
(T5's objective; targets are ``span_corruption_lengths(--max-input-length)[1]`` long).
--init-checkpoint starts from a checkpoint's params (a ``checkpoint_<step>`` directory, or a
model directory with a train_summary.json), with a fresh step counter and optimizer; it must
fit the model config and the vocabulary, so it needs --vocab. --teacher-checkpoint and
--distill train the model as a draft of that teacher (``spec_decode.train.distill``).
--eval-quality N scores greedy predictions on N test rows (BLEU or ROUGE, and the no-model
baseline; ``spec_decode.train.metrics``) into the summary.
The final params are written as ``<model-dir>/checkpoint_<step>`` (T5X's Orbax format), read
back and checked (identical logits), and ``<model-dir>/train_summary.json`` records the run.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import random
import sys

OBJECTIVES = ("task", "span_corruption")
KINDS = ("forward_kl", "on_policy")  # spec_decode.train.distill's, without importing JAX here
DIVERGENCES = ("tvd", "kl")

SMOKE_EXAMPLES = 200
SMOKE_WORDS = {  # a word-for-word toy "translation" for --smoke without a corpus
    "the": "der", "house": "haus", "cat": "katze", "dog": "hund", "tree": "baum",
    "water": "wasser", "fire": "feuer", "light": "licht", "garden": "garten", "is": "ist",
    "small": "klein", "big": "gross", "old": "alt", "new": "neu", "red": "rot", "green": "gruen",
    "and": "und", "not": "nicht", "here": "hier", "there": "dort",
}  # fmt: skip


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", help="build_corpus.py's output directory")
    p.add_argument("--task", default="translation_en_de", help="translation_en_de, summarization..")
    p.add_argument("--model-dir", required=True, help="checkpoints, vocabulary and summary go here")
    p.add_argument("--gin-file", default="t5_1_1/small.gin", help="a shipped or local gin file")
    p.add_argument("--config", default="T5_1_1_SMALL", help="the gin file's T5Config macro")
    p.add_argument("--vocab", help="an existing SentencePiece model (default: train one)")
    p.add_argument("--vocab-size", type=int, default=32000, help="pieces of a trained vocabulary")
    p.add_argument("--extra-ids", type=int, default=100, help="T5's sentinels above the pieces")
    p.add_argument("--max-input-length", type=int, default=512)
    p.add_argument("--max-target-length", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--pack", action="store_true", help="pack several examples per row")
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--train-seconds", type=float, default=None, help="wall-clock budget")
    p.add_argument("--base-learning-rate", type=float, default=1.0)
    p.add_argument("--warmup-steps", type=int, default=10_000)
    p.add_argument("--linear-warmup", action="store_true")
    p.add_argument("--dropout", type=float, default=0.0, help="T5X fine-tunes with 0.1")
    p.add_argument("--dtype", default="bfloat16", help="activation dtype; params stay float32")
    p.add_argument("--eval-every", type=int, default=2000)
    p.add_argument("--eval-examples", type=int, default=2000, help="validation examples used")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--objective",
        choices=OBJECTIVES,
        default="task",
        help="the task's pairs, or T5's span corruption on all the training text",
    )
    p.add_argument("--init-checkpoint", help="start from this checkpoint's params (needs --vocab)")
    p.add_argument(
        "--eval-quality",
        type=int,
        default=0,
        metavar="N",
        help="score greedy predictions on N test rows at the end (0: off)",
    )
    p.add_argument("--teacher-checkpoint", help="distil from this T5 (needs --distill, --vocab)")
    p.add_argument("--teacher-gin-file", default="t5_1_1/base.gin")
    p.add_argument("--teacher-config", default="T5_1_1_BASE", help="the teacher's T5Config macro")
    p.add_argument("--distill", choices=KINDS, help="forward_kl (teacher-forced) or on_policy")
    p.add_argument(
        "--divergence", choices=DIVERGENCES, help="default: kl for forward_kl, tvd for on_policy"
    )
    p.add_argument("--smoke", action="store_true", help="tiny T5, 200 examples, 20 CPU steps")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    _check_combinations(p, args)
    if args.smoke:
        args.vocab_size, args.extra_ids = 512, 4
        args.max_input_length = args.max_target_length = 32
        args.batch_size, args.steps, args.warmup_steps, args.eval_every = 16, 20, 10, 10
        args.eval_examples, args.dtype = 32, "float32"
    elif not args.corpus:
        p.error("--corpus is required (or --smoke)")
    return args


def _check_combinations(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if (args.teacher_checkpoint is None) != (args.distill is None):
        p.error("--teacher-checkpoint and --distill go together: give both or neither")
    if args.divergence and not args.distill:
        p.error(f"--divergence {args.divergence} needs --distill")
    if args.objective == "span_corruption" and (args.distill or args.eval_quality):
        p.error("--objective span_corruption trains no task: --distill and --eval-quality "
                "need --objective task")  # fmt: skip
    if args.distill == "on_policy" and args.pack:
        p.error("--distill on_policy samples one example per row: drop --pack")
    for name in ("init_checkpoint", "teacher_checkpoint"):
        if getattr(args, name) and not args.vocab:
            p.error(f"--{name.replace('_', '-')} needs --vocab: the checkpoint's own vocabulary")
    if args.eval_quality < 0:
        p.error(f"--eval-quality {args.eval_quality} is not allowed: it must be >= 0")


def smoke_corpus(directory: str, seed: int = 0) -> str:
    """A corpus directory of toy translation_en_de files and English text (all three splits)."""
    rng = random.Random(seed)
    os.makedirs(directory, exist_ok=True)
    for split, n in (("train", SMOKE_EXAMPLES), ("validation", 32), ("test", 16)):
        rows = []
        for _ in range(n):
            en = rng.choices(list(SMOKE_WORDS), k=rng.randint(3, 8))
            rows.append({"en": " ".join(en), "de": " ".join(SMOKE_WORDS[w] for w in en)})
        with open(os.path.join(directory, f"translation_en_de.{split}.jsonl"), "w") as f:
            f.writelines(json.dumps(row) + "\n" for row in rows)
        with open(os.path.join(directory, f"text_en.{split}.txt"), "w") as f:
            f.writelines(f"{row['en']}\n\n" for row in rows)
    return directory


def model_config(args, vocab_ids: int, gin_file: str | None = None, macro: str | None = None):
    """The gin file's T5Config with this run's vocabulary size, dropout and dtype."""
    from spec_decode.models.t5 import T5Config

    gin_file, macro = gin_file or args.gin_file, macro or args.config
    if args.smoke:
        config = T5Config(
            vocab_size=1, emb_dim=32, num_heads=2, head_dim=16, mlp_dim=64, num_encoder_layers=1,
            num_decoder_layers=1, mlp_activations=("gelu", "linear"),
        )  # fmt: skip
    else:
        import gin

        from spec_decode.t5x_compat import gin_support

        gin_support.parse_gin([gin_file], finalize=False)
        config = gin.query_parameter(f"%{macro}").scoped_configurable_fn()
    rows = -(-vocab_ids // 128) * 128
    return dataclasses.replace(config, vocab_size=rows, dropout_rate=args.dropout, dtype=args.dtype)


def checkpoint_path(path: str) -> str:
    """A checkpoint directory, or the one a model directory's train_summary.json names."""
    summary = os.path.join(path, "train_summary.json")
    if os.path.isfile(summary):
        with open(summary) as f:
            return json.load(f)["checkpoint"]
    return path


def load_checkpoint(flag: str, path: str, config, what: str):
    """``load_params`` with an error that names the flag and the config it had to fit."""
    from spec_decode import train

    try:
        return train.load_params(checkpoint_path(path), config)
    except (ValueError, FileNotFoundError, OSError) as error:
        raise ValueError(
            f"{flag} {path!r} is not allowed: it does not fit {what} ({config.vocab_size} "
            f"vocabulary rows, D = {config.emb_dim}, {config.num_encoder_layers}+"
            f"{config.num_decoder_layers} layers): {error}"
        ) from error


def training_data(args, corpus: str):
    """(vocabulary path, vocabulary, train batch stream, eval batches, target length)."""
    from spec_decode import train

    S, T = args.max_input_length, args.max_target_length
    if args.objective == "span_corruption":
        from spec_decode.data import read_text_documents

        documents = train.pretraining_documents(corpus)
        held_out = read_text_documents(os.path.join(corpus, "text_en.validation.txt"))
        texts = (line for d in documents for line in d.splitlines())
    else:
        pairs = train.read_pairs(train.corpus_file(corpus, args.task, "train"), args.task)
        eval_pairs = train.read_pairs(train.corpus_file(corpus, args.task, "validation"), args.task)
        if args.smoke:
            pairs = pairs[:SMOKE_EXAMPLES]
        eval_pairs = eval_pairs[: args.eval_examples]
        texts = (text for pair in pairs for text in pair)
    vocab_path = args.vocab or train.train_vocabulary(
        texts, os.path.join(args.model_dir, "vocab", "spm"), args.vocab_size, seed=args.seed
    )
    vocabulary = train.load_vocabulary(vocab_path, extra_ids=args.extra_ids)
    if args.objective == "span_corruption":
        _, T = train.span_corruption_lengths(S)
        make = lambda docs, seed: train.span_corruption_batches(
            docs, vocabulary, batch_size=args.batch_size, input_length=S, seed=seed,
            pack=args.pack,
        )  # fmt: skip
        stream = make(documents, args.seed)
        count = max(1, min(len(held_out), args.eval_examples) // args.batch_size)
        eval_batches = list(itertools.islice(make(held_out, args.seed + 1), count))
        print(f"{len(documents)} pre-training documents, targets of {T} tokens")
    else:
        examples = train.tokenize(pairs, vocabulary, S, T)
        stream = train.batches(examples, args.batch_size, S, T, seed=args.seed, pack=args.pack)
        eval_batches = list(
            train.batches(
                train.tokenize(eval_pairs, vocabulary, S, T), args.batch_size, S, T,
                seed=None, pack=args.pack, repeat=False,
            )
        )  # fmt: skip
        print(f"{len(examples)} training examples")
    return vocab_path, vocabulary, stream, eval_batches, T


def quality(args, corpus: str, config, params, vocabulary, T: int) -> dict:
    """Greedy predictions on --eval-quality test rows, scored, with the no-model baseline."""
    from spec_decode import train
    from spec_decode.train import metrics

    pairs = train.read_pairs(train.corpus_file(corpus, args.task, "test"), args.task)
    inputs, references = zip(*pairs[: args.eval_quality], strict=True)
    predictions = metrics.predict(
        config, params, vocabulary, inputs, args.task, batch_size=min(args.batch_size, 64),
        max_new_tokens=T, max_input_length=args.max_input_length,
    )  # fmt: skip
    baseline = metrics.baseline_predictions(args.task, inputs)
    return {
        "examples": len(inputs),
        "model": metrics.score(args.task, predictions, references),
        "baseline": metrics.score(args.task, baseline, references),
        "samples": [
            {"input": x, "reference": r, "prediction": p}
            for x, r, p in list(zip(inputs, references, predictions, strict=True))[:5]
        ],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import jax
    import numpy as np

    from spec_decode import train

    os.makedirs(args.model_dir, exist_ok=True)
    corpus = args.corpus or smoke_corpus(os.path.join(args.model_dir, "smoke_corpus"), args.seed)
    vocab_path, vocabulary, stream, eval_batches, T = training_data(args, corpus)
    config = model_config(args, vocabulary.vocab_size)
    train_config = train.TrainConfig(
        steps=args.steps, train_seconds=args.train_seconds,
        base_learning_rate=args.base_learning_rate, warmup_steps=args.warmup_steps,
        linear_warmup=args.linear_warmup, eval_every=args.eval_every,
        log_every=min(100, args.steps), seed=args.seed, progress=not args.no_progress,
    )  # fmt: skip
    if args.distill:
        teacher_config = dataclasses.replace(
            model_config(args, vocabulary.vocab_size, args.teacher_gin_file, args.teacher_config),
            dropout_rate=0.0,
        )
        what = "--teacher-gin-file/--teacher-config"
        teacher = load_checkpoint(
            "--teacher-checkpoint", args.teacher_checkpoint, teacher_config, what
        )
        trainer = train.DistillTrainer(
            config, train_config, teacher_config=teacher_config, teacher_params=teacher,
            kind=args.distill, divergence=args.divergence, sample_seed=args.seed,
        )  # fmt: skip
    else:
        trainer = train.T5Trainer(config, train_config)
    init = None
    if args.init_checkpoint:
        init = load_checkpoint("--init-checkpoint", args.init_checkpoint, config,
                               "--gin-file/--config")  # fmt: skip
    print(f"vocabulary {vocabulary.vocab_size} ids, model {config}, {jax.devices()[0].platform}")
    state = trainer.init_state(jax.random.key(args.seed), init)
    state, history = trainer.fit(state, stream, eval_batches)

    path = train.save_checkpoint(state.params, args.model_dir, int(state.step))
    loaded = train.load_params(path, config)
    same = bool(
        np.array_equal(
            trainer.eval_step(state.params, eval_batches[0])["loss"],
            trainer.eval_step(loaded, eval_batches[0])["loss"],
        )
    )
    summary = {
        "checkpoint": path,
        "vocabulary": vocab_path,
        "extra_ids": args.extra_ids,
        "objective": args.objective,
        "distill": args.distill and {"kind": trainer.kind, "divergence": trainer.divergence},
        "model": dataclasses.asdict(config),
        "train": dataclasses.asdict(trainer.config),
        "args": vars(args),
        "steps": history["steps"],
        "seconds": history["seconds"],
        "steps_per_second": history["steps"] / history["seconds"],
        "eval": history["eval"],
        "train_loss": history["train"],
        "reloaded_checkpoint_matches": same,
    }
    if args.eval_quality:
        scores = summary["quality"] = quality(args, corpus, config, state.params, vocabulary, T)
        print(f"quality on {scores['examples']} test rows: {scores['model']} "
              f"(baseline {scores['baseline']})")  # fmt: skip
    with open(os.path.join(args.model_dir, "train_summary.json"), "w") as f:
        json.dump(summary, f, indent=1, default=str)
    print(json.dumps({k: summary[k] for k in ("checkpoint", "steps", "steps_per_second")}))
    print(f"final eval: {history['eval'][-1][1]}; checkpoint reloads identically: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
