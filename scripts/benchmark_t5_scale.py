"""T5 1.1 at every size on one accelerator: decode step time against the memory floor.

    python scripts/benchmark_t5_scale.py --budget-seconds 480 --out t5_scale.json    # one H200
    JAX_PLATFORMS=cpu python scripts/benchmark_t5_scale.py --smoke --out /tmp/t5_scale.json

Random weights at T5X's initial scales, created on the device in bfloat16 one array at a time
(``_t5_bench.random_params``: a few tiny compilations per size); sizes run small -> xxl
(``--sizes`` picks some). For each size, at batch 1 with 64 encoder tokens:
  - the time of one decoder step (K = 1 token after 64 cached positions; 32 steps in one jitted
    loop, so that host dispatch is not what is timed) and of a whole 64-token autoregressive
    decode divided by its tokens;
  - the memory floor: decoder parameter bytes / device copy bandwidth measured in the same run
    (a decoder step reads every decoder weight once; the encoder runs once per sequence);
  - for the target (``--target``, default xxl): the cost of verifying gamma + 1 tokens in one
    call relative to one step, for the paper's gammas (3, 5, 7);
  - c = draft step / target step for every other size as a draft (and the same ratio of
    decode times per token);
  - the paper's Table 2 expected speedups recomputed with the measured c and the paper's alpha
    (Theorem 3.8), and again with the measured verification cost in the denominator.

Built for a one-shot run under a wall-clock limit: progress goes to stdout as it happens, the
JSON file is rewritten after every size, a failing size (out of memory) is recorded with its
error and the next one runs, and no new size starts after ``--budget-seconds``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import _t5_bench as tb
import jax
import jax.numpy as jnp
import numpy as np

from spec_decode import SamplingConfig, autoregressive_decode
from spec_decode.core import theory
from spec_decode.models.t5 import T5Decoding, make_t5_inputs

TABLE_2 = [  # task, draft, T, gamma, alpha, c, expected, measured (the paper's)
    ("EnDe", "small", 0, 7, 0.75, 0.02, 3.2, 3.4), ("EnDe", "base", 0, 7, 0.80, 0.04, 3.3, 2.8),
    ("EnDe", "large", 0, 7, 0.82, 0.11, 2.5, 1.7), ("EnDe", "small", 1, 7, 0.62, 0.02, 2.3, 2.6),
    ("EnDe", "base", 1, 5, 0.68, 0.04, 2.4, 2.4), ("EnDe", "large", 1, 3, 0.71, 0.11, 2.0, 1.4),
    ("CNNDM", "small", 0, 5, 0.65, 0.02, 2.4, 3.1), ("CNNDM", "base", 0, 5, 0.73, 0.04, 2.6, 3.0),
    ("CNNDM", "large", 0, 3, 0.74, 0.11, 2.0, 2.2), ("CNNDM", "small", 1, 5, 0.53, 0.02, 1.9, 2.3),
    ("CNNDM", "base", 1, 3, 0.55, 0.04, 1.8, 2.2), ("CNNDM", "large", 1, 3, 0.56, 0.11, 1.6, 1.7),
]  # fmt: skip
PAPER_GAMMAS = sorted({row[3] for row in TABLE_2})  # 3, 5, 7
CONTEXT = 64  # cached decoder positions before a timed step, and encoder tokens


def copy_bandwidth(gigabytes: float, calls: int = 10) -> float:
    """Bytes per second of an elementwise op over a large array (bytes read + bytes written).

    ``calls`` run back to back between synchronisations, so host dispatch hides behind them.
    """
    x = jnp.ones((int(gigabytes * 2**30) // 4,), jnp.float32)
    add_one = jax.jit(lambda a: a + 1.0)

    def run():
        for _ in range(calls):
            y = add_one(x)
        return y

    seconds, _, _ = tb.timed(run, repeats=5)
    return 2 * x.nbytes * calls / seconds


def step_loop(model: T5Decoding, k: int, iterations: int):
    """A jitted ``(inputs, cache) -> all logits finite`` running ``iterations`` steps of K tokens.

    Timing one jitted ``extend`` call at a time measures the host (hundreds of parameter arrays
    to dispatch: milliseconds on a GPU) more than the device. Here the steps run on the device
    inside one loop, as in the decoders: each feeds the previous argmax (so no step can be
    hoisted out of the loop), writes its keys and values into the cache in place, and resets the
    length so that every step attends to the same ``CONTEXT`` cached positions.
    """

    def run(inputs, cache):
        def body(_, carry):
            token, cache, finite = carry
            logits, cache = model.extend(inputs, jnp.broadcast_to(token, (1, k)), cache)
            token = jnp.argmax(logits[:, -1:], axis=-1).astype(jnp.int32)  # [1, 1]
            finite &= jnp.isfinite(logits).all()
            return token, cache.replace(lengths=jnp.full_like(cache.lengths, CONTEXT)), finite

        start = (jnp.ones((1, 1), jnp.int32), cache, jnp.array(True))
        return jax.lax.fori_loop(0, iterations, body, start)[2]

    return jax.jit(run)


def measure_size(size: str, args, bandwidth: float, is_target: bool) -> dict:
    """One size's row: parameter bytes, step and verify times, decode time per token."""
    model = T5Decoding(tb.t5_config(size, args.smoke, args.layers))
    row: dict = {"size": size, "layers": model.config.num_decoder_layers}
    start = time.perf_counter()
    params = tb.random_params(model, jax.random.key(0))
    row["init_s"] = time.perf_counter() - start
    leaves = jax.tree.leaves(params)
    row["params"] = int(sum(a.size for a in leaves))
    row["param_bytes"] = int(sum(a.nbytes for a in leaves))
    row["decoder_param_bytes"] = int(sum(a.nbytes for a in jax.tree.leaves(params["decoder"])))
    tb.log(f"{size}: {row['params'] / 1e6:.0f}M params made in {row['init_s']:.1f} s")

    encoder_tokens = jax.random.randint(jax.random.key(1), (1, CONTEXT), 2, model.vocab_size)
    inputs = make_t5_inputs(params, encoder_tokens)
    cache = jax.jit(lambda i: model.init_cache(i, 1, 2 * CONTEXT))(inputs)
    # A step costs the same whatever the cached values are: only the length is set.
    cache = cache.replace(lengths=jnp.full((1,), CONTEXT, jnp.int32))
    ks = [1] + ([g + 1 for g in sorted({*PAPER_GAMMAS, args.gamma})] if is_target else [])
    step_s = {}
    for k in ks:
        run = step_loop(model, k, args.step_iterations)
        seconds, first, finite = tb.timed(lambda run=run: run(inputs, cache), args.step_repeats)
        step_s[k] = seconds / args.step_iterations
        row["logits_finite"] = row.get("logits_finite", True) and bool(finite)
        if k == 1:
            row["step_first_call_s"] = first
        tb.log(f"{size}: {k}-token step {1e3 * step_s[k]:.3f} ms (first call {first:.1f} s)")
    row["step_ms"] = 1e3 * step_s[1]
    if is_target:
        row["verify_ms"] = {str(k): 1e3 * s for k, s in step_s.items() if k > 1}
        row["verify_cost_ratio"] = {str(k - 1): s / step_s[1] for k, s in step_s.items() if k > 1}

    prompt = jnp.zeros((1, 1), jnp.int32)  # BOS
    seconds, first, result = tb.timed(
        lambda: autoregressive_decode(
            model, inputs, prompt, max_new_tokens=args.new_tokens, sampling=SamplingConfig(0.0)
        ),
        args.repeats,
    )
    generated = int(np.asarray(result.lengths).sum())
    row["decode_ms_per_token"] = 1e3 * seconds / generated
    row["decode_first_call_s"] = first
    floor = row["decoder_param_bytes"] / bandwidth
    row["memory_floor_ms"] = 1e3 * floor
    row["floor_fraction_step"] = floor / step_s[1]
    row["floor_fraction_decode"] = floor / (seconds / generated)
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:  # a process-wide high-water mark: the largest size so far
        row["peak_memory_gb"] = stats["peak_bytes_in_use"] / 2**30
    tb.log(
        f"{size}: decode {row['decode_ms_per_token']:.3f} ms/token, floor "
        f"{row['memory_floor_ms']:.3f} ms ({row['floor_fraction_decode']:.0%} of the decode)"
    )
    return row


def summarise(rows: list[dict], target_requested: str, bandwidth: float, args) -> dict:
    """Everything measured so far: per-size rows, c against the target, Table 2 recomputed."""
    measured = [r for r in rows if "error" not in r]
    by_size = {r["size"]: r for r in measured}
    target = target_requested if target_requested in by_size else None
    costs, decode_costs, table = {}, {}, []
    if target is not None:
        step = by_size[target]["step_ms"]
        costs = {s: r["step_ms"] / step for s, r in by_size.items() if s != target}
        per_token = by_size[target]["decode_ms_per_token"]
        decode_costs = {
            s: r["decode_ms_per_token"] / per_token for s, r in by_size.items() if s != target
        }
        verify = by_size[target].get("verify_cost_ratio", {})
        for task, draft, temperature, gamma, alpha, c_paper, expected, measured_paper in TABLE_2:
            if draft not in costs:
                continue
            c = costs[draft]
            entry = {
                "task": task, "draft": draft, "T": temperature, "gamma": gamma, "alpha": alpha,
                "c_paper": c_paper, "c_measured": c, "expected_paper": expected,
                "measured_paper": measured_paper,
                "expected_with_our_c": theory.expected_speedup(alpha, gamma, c),
            }  # fmt: skip
            if str(gamma) in verify:  # Theorem 3.8 with a verify call costing what we measured
                entry["expected_with_our_c_and_verify_cost"] = theory.expected_tokens_per_call(
                    alpha, gamma
                ) / (gamma * c + verify[str(gamma)])
            table.append(entry)
    return tb.finite(
        {
            "device": jax.devices()[0].device_kind,
            "jax": jax.__version__,
            "smoke": args.smoke,
            "copy_bandwidth_bytes_per_s": bandwidth,
            "target": target,
            "target_requested": target_requested,
            "new_tokens": args.new_tokens,
            "sizes": rows,
            "c_vs_target": costs,
            "c_vs_target_from_decode": decode_costs,
            "table_2": table,
        }
    )


def markdown(result: dict) -> str:
    lines = [
        f"{result['device']}, jax {result['jax']}, copy bandwidth "
        f"{(result['copy_bandwidth_bytes_per_s'] or 0) / 1e9:.1f} GB/s, batch 1, "
        f"{result['new_tokens']} new tokens",
        "",
        "| size | params | step ms | decode ms/token | memory floor ms | floor / step | "
        "floor / decode | c vs target (steps) | c vs target (decodes) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["sizes"]:
        if "error" in r:
            lines.append(f"| {r['size']} | failed: {r['error'][:80]} ||||||||")
            continue
        c = result["c_vs_target"].get(r["size"])
        c_decode = result["c_vs_target_from_decode"].get(r["size"])
        lines.append(
            f"| {r['size']} | {r['params'] / 1e6:.4g}M | {r['step_ms']:.3f} | "
            f"{r['decode_ms_per_token']:.3f} | {r['memory_floor_ms']:.3f} | "
            f"{r['floor_fraction_step']:.2f} | {r['floor_fraction_decode']:.2f} | "
            f"{'-' if c is None else f'{c:.3f}'} | "
            f"{'-' if c_decode is None else f'{c_decode:.3f}'} |"
        )
    target = next((r for r in result["sizes"] if r["size"] == result["target"]), {})
    if target.get("verify_cost_ratio"):
        ratios = ", ".join(f"gamma {g}: {v:.2f}" for g, v in target["verify_cost_ratio"].items())
        lines += ["", f"{result['target']} verify (gamma + 1 tokens) / one step: {ratios}"]
    if result["table_2"]:
        lines += [
            "",
            "| task | draft | T | gamma | alpha | c paper | c ours | expected paper | "
            "expected, our c | expected, our c and verify cost | measured paper |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for t in result["table_2"]:
            with_verify = t.get("expected_with_our_c_and_verify_cost")
            lines.append(
                f"| {t['task']} | {t['draft']} | {t['T']} | {t['gamma']} | {t['alpha']} | "
                f"{t['c_paper']} | {t['c_measured']:.3f} | {t['expected_paper']} | "
                f"{t['expected_with_our_c']:.2f} | "
                f"{'' if with_verify is None else f'{with_verify:.2f}'} | {t['measured_paper']} |"
            )
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="small,base,large,xl,xxl", help="run small -> xxl")
    parser.add_argument("--target", default="xxl", help="the size c and verify cost refer to")
    parser.add_argument("--gamma", type=int, default=7, help="verified too, beside 3, 5, 7")
    parser.add_argument("--new-tokens", type=int, default=64, help="tokens per timed decode")
    parser.add_argument("--repeats", type=int, default=3, help="timed decodes per size")
    parser.add_argument("--step-iterations", type=int, default=32, help="steps per timed loop")
    parser.add_argument("--step-repeats", type=int, default=5, help="timed loops per K")
    parser.add_argument(
        "--budget-seconds", type=float, default=None,
        help="start no new size after this many seconds (default: no limit)",
    )  # fmt: skip
    parser.add_argument("--layers", type=int, default=None, help="override every depth")
    parser.add_argument("--smoke", action="store_true", help="tiny widths, 2 layers (CPU)")
    parser.add_argument("--out", default="t5_scale.json", help="JSON file, rewritten per size")
    args = parser.parse_args(argv)
    sizes = [s for s in args.sizes.split(",") if s]
    unknown = [s for s in sizes if s not in tb.SIZES]
    if not sizes or unknown:
        parser.error(f"--sizes={args.sizes!r} is not allowed: sizes among {list(tb.SIZES)}")
    args.sizes = sorted(set(sizes), key=list(tb.SIZES).index)  # smallest first
    if args.target not in tb.SIZES:
        parser.error(f"--target={args.target!r} is not allowed: one of {list(tb.SIZES)}")
    if args.layers is not None and args.layers < 1:
        parser.error(f"--layers={args.layers} is not allowed: an integer >= 1")
    for name in ("gamma", "new_tokens", "repeats", "step_iterations", "step_repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}={getattr(args, name)} is not allowed: >= 1")
    if args.smoke:
        args.new_tokens, args.repeats, args.step_iterations, args.step_repeats = 16, 2, 4, 2
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tb.log(f"jax {jax.__version__} on {jax.devices()[0].device_kind}; sizes {args.sizes}")
    bandwidth = copy_bandwidth(0.0625 if args.smoke else 2.0)
    tb.log(f"copy bandwidth {bandwidth / 1e9:.1f} GB/s")
    rows: list[dict] = []

    def measure(size):
        return measure_size(size, args, bandwidth, is_target=size == args.target)

    for row in tb.within_budget(args.sizes, "size", args.budget_seconds, measure):
        rows.append(row)
        result = summarise(rows, args.target, bandwidth, args)
        out.write_text(json.dumps(result, indent=1))
        print(json.dumps(result["sizes"][-1]), flush=True)
    result = summarise(rows, args.target, bandwidth, args)
    print(markdown(result), flush=True)
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
