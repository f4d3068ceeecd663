"""What verifying K tokens in one call costs, against one token: SmolLM2 and its drafts.

    python scripts/verify_cost.py --out docs/benchmarks/cpu/verify_cost.json   # float32, CPU
    python scripts/verify_cost.py --smoke --out /tmp/verify_cost.json          # tiny models

Theorem 3.8 assumes a call over gamma + 1 tokens costs what a call over one token does (true
where a step reads weights and does little arithmetic, as on a GPU at batch 1). On a CPU the
arithmetic shows: this measures time(extend K tokens) / time(extend 1 token) for the target at
batch 1 after a prompt-sized context, and each draft's step time over the target's (c), all
jitted, median of --repeats after a warm-up, in one process.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import jax
import jax.numpy as jnp

from spec_decode.app import registry
from spec_decode.bench import time_call


def _step_seconds(model, params, tokens: int, context: int, repeats: int) -> float:
    cache = model.init_cache(params, 1, context + tokens + 1)
    extend = jax.jit(model.extend)
    _, cache = extend(params, jnp.full((1, context), 7, jnp.int32), cache)
    block = jnp.full((1, tokens), 7, jnp.int32)
    seconds, _ = time_call(lambda: extend(params, block, cache)[0], repeats)
    return seconds


def _models(args):
    if args.smoke:
        from spec_decode.models import tiny_llama

        return tiny_llama(2, 0), {"tiny": tiny_llama(1, 1)}
    target, draft, draft_params = registry.load_pair(
        "smollm2-135m", "smollm2-draft", dtype=args.dtype, gguf=args.gguf, draft_dir=args.draft_dir
    )
    regather = {k: v for k, v in draft_params.items() if k != "head"}  # rows gathered every step
    drafts = {
        "smollm2-draft": (draft, draft_params),
        "smollm2-draft (head rows gathered every step)": (draft, regather),
        "prompt-lookup": registry.load_draft("prompt-lookup", target),
    }
    if args.dtype != "bfloat16":  # what loading the draft in another dtype than the target costs
        drafts["smollm2-draft (bfloat16)"] = registry.load_draft(
            "smollm2-draft", target, directory=args.draft_dir, dtype="bfloat16"
        )
    return (target.model, target.params), drafts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gguf", default=None)
    parser.add_argument("--draft-dir", default=None, help="smollm2-draft's (default: shipped)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--tokens", default="1,2,3,4,5,6,7,8,9")
    parser.add_argument("--context", type=int, default=96, help="tokens already in the cache")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", default="verify_cost.json")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    if args.smoke:
        args.tokens, args.context, args.repeats = "1,2,5", 8, 2
    (target, params), drafts = _models(args)
    counts = [int(x) for x in args.tokens.split(",")]
    if counts[0] != 1:
        parser.error(f"--tokens={args.tokens} is not allowed: it must start with 1")
    seconds = {k: _step_seconds(target, params, k, args.context, args.repeats) for k in counts}
    result = {
        "device": str(jax.devices()[0]),
        "jax": jax.__version__,
        "dtype": args.dtype,
        "context": args.context,
        "target_ms": {k: 1e3 * s for k, s in seconds.items()},
        "verify_cost": {k: s / seconds[1] for k, s in seconds.items()},
        "c": {},
    }
    for name, (draft, draft_params) in drafts.items():
        draft_s = _step_seconds(draft, draft_params, 1, args.context, args.repeats)
        result["c"][name] = draft_s / seconds[1]
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
