"""The ``spec-decode`` command: ``generate`` text and run the speedup ``demo``.

    spec-decode generate --prompt "Why is the sky blue?" --max-new-tokens 64
    spec-decode generate --prompt-file prompts.jsonl --num-samples 4 --temperature 0.8 --json
    spec-decode demo                       # SmolLM2 + its draft: identical texts, alpha, speedup

Parsing and printing only; the work is in ``spec_decode.app``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence

from spec_decode.app import registry
from spec_decode.core import stats
from spec_decode.core.validation import MAX_GAMMA


def _int_at_least(name: str, minimum: int, maximum: int | None = None, why: str = ""):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            allowed = f"an integer >= {minimum}" + ("" if maximum is None else f" and <= {maximum}")
            raise argparse.ArgumentTypeError(
                f"{name}={text!r} is not allowed: it must be {allowed}{why}"
            )
        return value

    return parse


def _float_in(name: str, low: float, high: float, low_open: bool, allowed: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        inside = (value > low if low_open else value >= low) and value <= high
        if not inside:
            raise argparse.ArgumentTypeError(f"{name}={text!r} is not allowed: {allowed}")
        return value

    return parse


def GAMMA(text: str):  # noqa: N802 (an argparse type, like the parsers above)
    """A number of drafts per round (1..MAX_GAMMA), or "auto" (chosen each round)."""
    if text == "auto":
        return text
    return _int_at_least("gamma", 1, MAX_GAMMA, " (drafts per round)")(text)


MAX_NEW_TOKENS = _int_at_least("max_new_tokens", 1)
TEMPERATURE = _float_in(
    "temperature", 0, sys.float_info.max, False, "it must be a finite number >= 0"
)
TOP_P = _float_in("top_p", 0, 1, True, "it must be in (0, 1]")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spec-decode", description="Exact speculative decoding (Leviathan et al. 2023)."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = commands.add_parser("generate", help="generate text, streamed or as JSON lines")
    source = gen.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt", help="one prompt")
    source.add_argument("--prompt-file", help='JSONL file, one {"prompt": ...} per line')
    gen.add_argument("--target", default=registry.DEFAULT_TARGET, choices=registry.TARGETS)
    gen.add_argument("--draft", default=registry.DEFAULT_DRAFT, choices=registry.DRAFTS)
    gen.add_argument(
        "--draft-dir",
        help="directory of smollm2-draft's or smollm2-eagle's weights (default: the installed "
        "asset; scripts/distill_draft.py or scripts/train_eagle.py --out DIR write others)",
    )
    gen.add_argument("--mode", default="speculative", choices=("speculative", "autoregressive"))
    gen.add_argument(
        "--gamma", type=GAMMA, default=4,
        help="draft tokens per round (default 4), or 'auto': chosen each round from alpha so "
        "far and this machine's measured draft and verification costs",
    )  # fmt: skip
    recommended = "; ".join(
        f"{name}: temperature {config.temperature:g}, top-k {config.top_k}, "
        f"top-p {config.top_p:g}, from {source}"
        for name, (config, source) in registry.RECOMMENDED_SAMPLING.items()
    )
    gen.add_argument(
        "--temperature",
        type=TEMPERATURE,
        help="0 = greedy. Without --temperature, --top-k and --top-p the target's own "
        f"recommended sampling is used ({recommended}); giving any of the three replaces it, "
        "the ones not given being off (temperature 1, top-k 0, top-p 1)",
    )
    gen.add_argument("--top-k", type=_int_at_least("top_k", 0), help="0 = off")
    gen.add_argument("--top-p", type=TOP_P, help="1 = off")
    gen.add_argument("--seed", type=_int_at_least("seed", 0), default=0)
    gen.add_argument("--max-new-tokens", type=MAX_NEW_TOKENS, default=128)
    gen.add_argument(
        "--num-samples",
        type=_int_at_least("num_samples", 1),
        default=1,
        help="independent samples per prompt, decoded as one batch",
    )
    gen.add_argument(
        "--chat",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="apply the chat template (default: on for instruction-tuned targets)",
    )
    gen.add_argument("--json", action="store_true", help="one JSON object per sample")
    gen.add_argument(
        "--batch-size",
        type=_int_at_least("batch_size", 1),
        default=64,
        help="rows per decoder call with --json (default 64)",
    )

    demo = commands.add_parser("demo", help="autoregressive vs speculative greedy on SmolLM2")
    demo.add_argument(
        "--draft",
        default=registry.DEFAULT_DRAFT,
        choices=registry.DRAFTS,
        help="default: the shipped neural draft",
    )
    demo.add_argument(
        "--draft-dir",
        help="directory of smollm2-draft's or smollm2-eagle's weights (default: the installed "
        "asset; scripts/distill_draft.py or scripts/train_eagle.py --out DIR write others)",
    )
    demo.add_argument(
        "--gamma", type=GAMMA, default=4, help="draft tokens per round (default 4) or 'auto'"
    )
    demo.add_argument(
        "--max-new-tokens", type=MAX_NEW_TOKENS, default=64, help="per prompt (default 64)"
    )
    demo.add_argument(
        "--repeats",
        type=_int_at_least("repeats", 1),
        default=3,
        help="timed repeats; the median is reported (default 3)",
    )
    demo.add_argument("--json", action="store_true", help="print the report as one JSON object")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "generate":
            return _generate(args)
        return _demo(args)
    except (ValueError, FileNotFoundError) as error:
        parser.exit(2, f"spec-decode {args.command}: error: {error}\n")


def sampling_from_args(args: argparse.Namespace):
    """The target's recommended sampling, unless any of the three options is given."""
    from spec_decode.core.sampling import SamplingConfig

    given = (args.temperature, args.top_k, args.top_p)
    if given == (None, None, None) and args.target in registry.RECOMMENDED_SAMPLING:
        return registry.RECOMMENDED_SAMPLING[args.target][0]
    defaults = (1.0, 0, 1.0)
    return SamplingConfig(*(d if g is None else g for g, d in zip(given, defaults, strict=True)))


def _generate(args: argparse.Namespace) -> int:
    from spec_decode.app import generation

    if args.prompt is not None:
        prompts = [generation.check_prompt_text("prompt", args.prompt)]
    else:
        prompts = generation.read_prompt_file(args.prompt_file)
    options = generation.GenerateOptions(
        target=args.target, draft=args.draft, mode=args.mode, gamma=args.gamma,
        sampling=sampling_from_args(args), seed=args.seed,
        max_new_tokens=args.max_new_tokens, num_samples=args.num_samples, chat=args.chat,
        batch_size=args.batch_size, draft_dir=args.draft_dir,
    )  # fmt: skip
    if args.json:
        for sample in generation.iter_generate(prompts, options):
            print(json.dumps(sample.to_json(), ensure_ascii=False), flush=True)
        return 0
    headers = len(prompts) * options.num_samples > 1
    started = set()

    def write(index: int, piece: str) -> None:
        if headers and index not in started:
            print(f"### prompt {index + 1}, sample 1", flush=True)
        started.add(index)
        print(piece, end="", flush=True)

    for index, samples in enumerate(generation.stream_generate(prompts, options, write)):
        print(flush=True)
        for sample in samples[1:]:
            print(f"### prompt {index + 1}, sample {sample.sample + 1}\n{sample.text}")
        _print_stats(samples, options)
    return 0


def _print_stats(samples, options) -> None:
    calls = sum(s.stats["target_calls"] for s in samples)
    tokens = sum(len(s.tokens) for s in samples)
    line = f"[{options.mode}: {tokens} tokens, {calls} target calls"
    if options.mode == "speculative":
        accepted = sum(s.stats["accepted_tokens"] for s in samples)
        alpha = stats.alpha(accepted, sum(s.stats["examined_drafts"] for s in samples))
        shown = "n/a" if alpha is None else f"{alpha:.2f}"
        line += f", draft {options.draft}, gamma {options.gamma}, alpha {shown}"
    print(line + "]", file=sys.stderr, flush=True)


def _demo(args: argparse.Namespace) -> int:
    from spec_decode.app.demo import DemoOptions, format_report, run_demo

    options = DemoOptions(
        draft=args.draft, gamma=args.gamma, max_new_tokens=args.max_new_tokens,
        repeats=args.repeats, draft_dir=args.draft_dir,
    )  # fmt: skip
    report = run_demo(options)
    print(json.dumps(report, ensure_ascii=False) if args.json else format_report(report))
    return 0 if report["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
