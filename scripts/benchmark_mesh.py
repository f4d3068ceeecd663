"""Time a T5 1.1 XXL-size target, model-parallel over 1, 2 and 4 GPUs, with a small draft.

    python scripts/benchmark_mesh.py --gpus 1,2,4 --budget-seconds 480 --out mesh.json  # 4 H200s
    python scripts/benchmark_mesh.py --gpus 1,2 --budget-seconds 480 --out mesh.json    # 2 H200s
    XLA_FLAGS=--xla_force_host_platform_device_count=4 JAX_PLATFORMS=cpu \
        python scripts/benchmark_mesh.py --smoke --gpus 1,2,4 --out /tmp/mesh.json      # CPU

Weights are random (bfloat16, T5X's initial scales) and made already split over the mesh, one
array at a time by a jitted maker with ``out_shardings`` (``_t5_bench.random_params``): no
device ever holds the whole target unless the mesh has one device, and no float32 copy exists.
The draft (T5 1.1 small) is replicated on every device unless ``--shard-draft``. Each GPU count
n is a (data=1, model=n) mesh of the first n devices, so one process runs every count in turn.

With random weights the draft rarely agrees with the target, so the measured speculative time
is that of a low acceptance rate alpha. Each record therefore also carries the cost ratio c
(draft time per token / target time per token, both autoregressive on the same mesh) and the
paper's Theorem 3.8 prediction at the alpha that T5-XXL with a T5-small draft reaches on WMT
EnDe (0.75 greedy, 0.62 sampled; Table 3).

Per record: autoregressive and speculative milliseconds per token (median of repeats after a
warm-up; compilation excluded: each decoder is compiled ahead of time and its compile seconds
recorded), alpha, tokens per target call, c, the predicted time, init and compile seconds, peak
device memory, the all-gathers of whole weights found in the compiled speculative loop
(``spec_decode.bench.hlo.weight_gathers``; it should be 0) and the number of each collective op
in the compiled programs.

Built for a one-shot run under a wall-clock limit: progress goes to stdout as it happens, the
JSON list is rewritten after every record, a failing GPU count (out of memory, too few devices)
is recorded with its error and the next one runs, and no new count starts after
``--budget-seconds``.
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import sys
import time

import _t5_bench as tb
import jax
import jax.numpy as jnp
import numpy as np

from spec_decode import DecoderParams, SamplingConfig, SpeculativeDecoder, sharding
from spec_decode.bench.hlo import collective_counts, weight_gathers
from spec_decode.core import theory
from spec_decode.models.t5 import T5Decoding, make_t5_inputs

PAPER_ALPHA = {0.0: 0.75, 1.0: 0.62}  # T5-XXL target, T5-small draft, WMT EnDe (Table 3)


def init_on_mesh(model: T5Decoding, key, mesh, shard: bool):
    """Random bfloat16 params made directly in their final layout; (params, seconds)."""
    start = time.perf_counter()
    if shard:
        shapes = jax.eval_shape(model.init, key)
        layout = sharding.param_shardings(shapes, model.logical_axes(), mesh)
    else:
        layout = tb.replicated(mesh)
    params = tb.random_params(model, key, layout)
    return params, time.perf_counter() - start


def compile_ahead(decoder, params, prompts):
    """(the compiled loop as a function of nothing, its HLO text, compile seconds)."""
    start = time.perf_counter()
    inputs = decoder.inputs(prompts, None, jax.random.key(2))
    compiled = decoder.lower(params, *inputs).compile()
    return (lambda: compiled(params, *inputs)), compiled.as_text(), time.perf_counter() - start


def peak_memory_gb(devices) -> float | None:
    """The largest peak of ``devices`` (None where the backend keeps no statistics)."""
    peaks = [(d.memory_stats() or {}).get("peak_bytes_in_use") for d in devices]
    peaks = [p for p in peaks if p is not None]
    return round(max(peaks) / 2**30, 2) if peaks else None


def run_one(args, gpus: int, used_devices: set) -> dict:
    devices = jax.devices()[:gpus]
    if len(devices) < gpus:
        raise ValueError(f"--gpus {gpus} is not allowed here: only {len(devices)} devices")
    # Peak memory is a per-process high-water mark: only devices no earlier count used give
    # this count's own peak (with 1, 2, 4 in turn: device 0, then 1, then 2 and 3).
    fresh = [d for d in devices if d.id not in used_devices]
    used_devices.update(d.id for d in devices)
    record: dict = {"gpus": gpus, "device": devices[0].device_kind}
    mesh = sharding.make_mesh(data=1, model=gpus, devices=devices)
    rules = sharding.STANDARD_RULES
    target = T5Decoding(tb.t5_config(args.target_size, args.smoke, args.layers))
    draft = T5Decoding(tb.t5_config(args.draft_size, args.smoke))
    target_params, record["target_init_s"] = init_on_mesh(
        target, jax.random.key(0), mesh, shard=True
    )
    record["target_param_gb_per_device"] = round(
        sum(x.addressable_shards[0].data.nbytes for x in jax.tree.leaves(target_params)) / 2**30,
        2,
    )
    tb.log(
        f"gpus={gpus}: target {args.target_size} created in {record['target_init_s']:.1f} s, "
        f"{record['target_param_gb_per_device']} GB per device"
    )
    draft_params, _ = init_on_mesh(draft, jax.random.key(1), mesh, shard=args.shard_draft)
    if not args.shard_draft:
        draft = sharding.Replicated(draft)  # its cache stays whole on each device too

    rng = np.random.default_rng(0)
    source = rng.integers(2, target.vocab_size, size=(args.batch, args.source_length))
    source = sharding.shard_batch(jnp.asarray(source, jnp.int32), mesh)
    target_in = make_t5_inputs(target_params, source)
    draft_in = make_t5_inputs(draft_params, source)
    prompts = sharding.shard_batch(jnp.zeros((args.batch, 1), jnp.int32), mesh)  # BOS
    sampling = SamplingConfig(temperature=args.temperature)
    common = dict(max_new_tokens=args.max_new_tokens, sampling=sampling, mesh=mesh, rules=rules)

    # Each decoder is compiled ahead of time (its compile seconds recorded, its HLO readable)
    # and the timed calls run that executable.
    spec, hlo, record["speculative_compile_s"] = compile_ahead(
        SpeculativeDecoder(target, draft, args.gamma, **common),
        DecoderParams(target_in, draft_in), prompts,
    )  # fmt: skip
    gathers = weight_gathers(hlo, target_params)
    record["weight_all_gathers"] = len(gathers)
    record["speculative_collectives"] = collective_counts(hlo)
    tb.log(
        f"gpus={gpus}: speculative loop compiled in {record['speculative_compile_s']:.1f} s, "
        f"{len(gathers)} weight all-gathers"
    )
    sd_s, _, sd = tb.timed(spec, args.repeats)
    sd_ms = per_token_ms(sd_s, sd)
    summary = sd.summary()
    tb.log(f"gpus={gpus}: speculative {sd_ms:.3f} ms/token, alpha {summary['alpha']:.3f}")

    ar, ar_hlo, record["ar_compile_s"] = compile_ahead(
        SpeculativeDecoder(target, **common), DecoderParams(target_in), prompts
    )
    ar_s, _, ar_result = tb.timed(ar, args.repeats)
    ar_ms = per_token_ms(ar_s, ar_result)
    tb.log(f"gpus={gpus}: autoregressive {ar_ms:.3f} ms/token")
    record["ar_collectives"] = collective_counts(ar_hlo)
    differs = np.nonzero((np.asarray(ar_result.tokens) != np.asarray(sd.tokens)).any(axis=0))[0]

    draft_ar, _, record["draft_ar_compile_s"] = compile_ahead(
        SpeculativeDecoder(draft, **common), DecoderParams(draft_in), prompts
    )
    draft_s, _, draft_result = tb.timed(draft_ar, args.repeats)
    c = per_token_ms(draft_s, draft_result) / ar_ms
    paper_alpha = PAPER_ALPHA.get(args.temperature, 0.75)
    predicted = theory.expected_speedup(paper_alpha, args.gamma, c)
    record.update(
        target=args.target_size,
        draft=args.draft_size,
        draft_sharded=args.shard_draft,
        target_layers=target.config.num_decoder_layers,
        batch=args.batch,
        source_length=args.source_length,
        gamma=args.gamma,
        temperature=args.temperature,
        max_new_tokens=args.max_new_tokens,
        ar_ms_per_token=round(ar_ms, 3),
        spec_ms_per_token=round(sd_ms, 3),
        draft_ar_ms_per_token=round(per_token_ms(draft_s, draft_result), 3),
        alpha=round(summary["alpha"], 3),
        tokens_per_target_call=round(summary["tokens_per_target_call"], 3),
        # Greedy speculative equals greedy autoregressive up to rounding: bfloat16 sums over
        # K + 1 verified positions round differently from one position, which flips near-ties.
        greedy_first_difference=(int(differs[0]) if differs.size else None)
        if args.temperature == 0
        else None,
        c=round(c, 4),
        paper_alpha=paper_alpha,
        predicted_spec_ms_per_token_at_paper_alpha=round(ar_ms / predicted, 3),
        predicted_speedup_at_paper_alpha=round(predicted, 2),
        peak_memory_gb_per_device=peak_memory_gb(fresh),
    )
    return record


def per_token_ms(seconds: float, result) -> float:
    return 1000 * seconds / max(int(np.asarray(result.lengths).sum()), 1)


def markdown(records: list[dict]) -> str:
    head = (
        "| GPUs | target GB/GPU | AR ms/token | spec ms/token (alpha) | tokens/call | c | "
        "predicted spec ms/token at paper alpha (speedup) | weight all-gathers | "
        "compile s (spec, AR) |\n|---|---|---|---|---|---|---|---|---|"
    )
    rows = []
    for r in records:
        if "error" in r:
            rows.append(f"| {r['gpus']} | failed: {r['error'][:80]} |||||||||")
            continue
        rows.append(
            f"| {r['gpus']} | {r['target_param_gb_per_device']} | {r['ar_ms_per_token']} | "
            f"{r['spec_ms_per_token']} ({r['alpha']}) | {r['tokens_per_target_call']} | "
            f"{r['c']} | {r['predicted_spec_ms_per_token_at_paper_alpha']} "
            f"({r['predicted_speedup_at_paper_alpha']}x at {r['paper_alpha']}) | "
            f"{r['weight_all_gathers']} | {r['speculative_compile_s']:.0f}, "
            f"{r['ar_compile_s']:.0f} |"
        )
    return "\n".join([head, *rows])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gpus", default="1,2,4", help="model-axis sizes, comma-separated")
    parser.add_argument("--target-size", default="xxl", choices=list(tb.SIZES))
    parser.add_argument("--draft-size", default="small", choices=list(tb.SIZES))
    parser.add_argument("--layers", type=int, default=None, help="override the target's depth")
    parser.add_argument("--shard-draft", action="store_true", help="split the draft too")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--source-length", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--gamma", type=int, default=7)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--budget-seconds", type=float, default=None,
        help="start no new GPU count after this many seconds (default: no limit)",
    )  # fmt: skip
    parser.add_argument("--smoke", action="store_true", help="tiny models (CPU)")
    parser.add_argument("--out", default="mesh_results.json", help="JSON list, appended to")
    args = parser.parse_args(argv)
    try:
        args.gpus = [int(x) for x in args.gpus.split(",") if x]
    except ValueError:
        parser.error(f"--gpus={args.gpus!r} is not allowed: comma-separated integers")
    if not args.gpus or min(args.gpus) < 1:
        parser.error(f"--gpus={args.gpus!r} is not allowed: integers >= 1")
    for name in ("batch", "source_length", "max_new_tokens", "gamma", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}={getattr(args, name)} is not allowed: >= 1")
    if args.layers is not None and args.layers < 1:
        parser.error(f"--layers={args.layers} is not allowed: an integer >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    out = pathlib.Path(args.out)
    earlier = json.loads(out.read_text()) if out.exists() else []
    tb.log(
        f"jax {jax.__version__}, {jax.device_count()} x {jax.devices()[0].device_kind}; "
        f"target {args.target_size}, draft {args.draft_size}, gpus {args.gpus}"
    )
    records: list[dict] = []
    used_devices: set = set()
    measure = functools.partial(run_one, args, used_devices=used_devices)
    for record in tb.within_budget(args.gpus, "gpus", args.budget_seconds, measure):
        records.append(tb.finite(record))
        out.write_text(json.dumps(earlier + records, indent=1))
        print(json.dumps(records[-1]), flush=True)
    print(markdown(records), flush=True)
    return 0 if all("error" not in r for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
