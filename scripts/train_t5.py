"""Train a T5 on one task of the corpus that ``scripts/build_corpus.py`` writes.

    python scripts/build_corpus.py --out /data/corpus
    python scripts/train_t5.py --corpus /data/corpus --task translation_en_de \\
      --model-dir /ckpts/t5_1_1_base_en_de --gin-file t5_1_1/base.gin --config T5_1_1_BASE \\
      --steps 100000 --train-seconds 7200 --batch-size 128 --pack
    python scripts/train_t5.py --smoke --model-dir /tmp/t5_smoke     # tiny, CPU, < 60 s

The model's dimensions come from a shipped gin file's T5Config macro (``configs/t5_1_1/``);
its vocab_size becomes the vocabulary's ids (pieces + extra ids) rounded up to a multiple of
128, and --dropout / --dtype override the file's. Without --vocab a SentencePiece vocabulary
is trained on the task's training text (both sides) into ``<model-dir>/vocab/spm.model``.
The final params are written as ``<model-dir>/checkpoint_<step>`` (T5X's Orbax format), read
back and checked (identical logits), and ``<model-dir>/train_summary.json`` records the run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys

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
    p.add_argument("--smoke", action="store_true", help="tiny T5, 200 examples, 20 CPU steps")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.smoke:
        args.vocab_size, args.extra_ids = 512, 4
        args.max_input_length = args.max_target_length = 32
        args.batch_size, args.steps, args.warmup_steps, args.eval_every = 16, 20, 10, 10
        args.eval_examples, args.dtype = 32, "float32"
    elif not args.corpus:
        p.error("--corpus is required (or --smoke)")
    return args


def smoke_corpus(directory: str, seed: int = 0) -> str:
    """A corpus directory of toy translation_en_de files (train, validation)."""
    rng = random.Random(seed)
    os.makedirs(directory, exist_ok=True)
    for split, n in (("train", SMOKE_EXAMPLES), ("validation", 32)):
        with open(os.path.join(directory, f"translation_en_de.{split}.jsonl"), "w") as f:
            for _ in range(n):
                en = rng.choices(list(SMOKE_WORDS), k=rng.randint(3, 8))
                row = {"en": " ".join(en), "de": " ".join(SMOKE_WORDS[w] for w in en)}
                f.write(json.dumps(row) + "\n")
    return directory


def model_config(args, vocab_ids: int):
    """The gin file's T5Config with this run's vocabulary size, dropout and dtype."""
    from spec_decode.models.t5 import T5Config

    if args.smoke:
        config = T5Config(
            vocab_size=1, emb_dim=32, num_heads=2, head_dim=16, mlp_dim=64, num_encoder_layers=1,
            num_decoder_layers=1, mlp_activations=("gelu", "linear"),
        )  # fmt: skip
    else:
        import gin

        from spec_decode.t5x_compat import gin_support

        gin_support.parse_gin([args.gin_file], finalize=False)
        config = gin.query_parameter(f"%{args.config}").scoped_configurable_fn()
    rows = -(-vocab_ids // 128) * 128
    return dataclasses.replace(config, vocab_size=rows, dropout_rate=args.dropout, dtype=args.dtype)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import jax
    import numpy as np

    from spec_decode import train

    os.makedirs(args.model_dir, exist_ok=True)
    corpus = args.corpus or smoke_corpus(os.path.join(args.model_dir, "smoke_corpus"), args.seed)
    train_pairs = train.read_pairs(train.corpus_file(corpus, args.task, "train"), args.task)
    eval_pairs = train.read_pairs(train.corpus_file(corpus, args.task, "validation"), args.task)
    if args.smoke:
        train_pairs = train_pairs[:SMOKE_EXAMPLES]
    eval_pairs = eval_pairs[: args.eval_examples]

    vocab_path = args.vocab or train.train_vocabulary(
        (text for pair in train_pairs for text in pair),
        os.path.join(args.model_dir, "vocab", "spm"),
        args.vocab_size,
        seed=args.seed,
    )
    vocabulary = train.load_vocabulary(vocab_path, extra_ids=args.extra_ids)
    config = model_config(args, vocabulary.vocab_size)
    S, T = args.max_input_length, args.max_target_length
    train_examples = train.tokenize(train_pairs, vocabulary, S, T)
    eval_batches = list(
        train.batches(
            train.tokenize(eval_pairs, vocabulary, S, T), args.batch_size, S, T,
            seed=None, pack=args.pack, repeat=False,
        )
    )  # fmt: skip
    trainer = train.T5Trainer(
        config,
        train.TrainConfig(
            steps=args.steps, train_seconds=args.train_seconds,
            base_learning_rate=args.base_learning_rate, warmup_steps=args.warmup_steps,
            linear_warmup=args.linear_warmup, eval_every=args.eval_every,
            log_every=min(100, args.steps), seed=args.seed, progress=not args.no_progress,
        ),
    )  # fmt: skip
    print(f"{len(train_examples)} training examples, vocabulary {vocabulary.vocab_size} ids, "
          f"model {config}, {jax.devices()[0].platform}")  # fmt: skip
    state = trainer.init_state(jax.random.key(args.seed))
    stream = train.batches(train_examples, args.batch_size, S, T, seed=args.seed, pack=args.pack)
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
    with open(os.path.join(args.model_dir, "train_summary.json"), "w") as f:
        json.dump(summary, f, indent=1, default=str)
    print(json.dumps({k: summary[k] for k in ("checkpoint", "steps", "steps_per_second")}))
    print(f"final eval: {history['eval'][-1][1]}; checkpoint reloads identically: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
