"""Time a T5 1.1 XXL-size target, model-parallel over 1, 2 and 4 GPUs, with a small draft.

    python scripts/benchmark_mesh.py --gpus 1,2,4 --out mesh_results.json        # H200s
    XLA_FLAGS=--xla_force_host_platform_device_count=4 JAX_PLATFORMS=cpu \
        python scripts/benchmark_mesh.py --smoke --gpus 1,2,4 --out /tmp/mesh.json   # CPU

Weights are random (bfloat16) and created already split over the mesh by
``jax.jit(init, out_shardings=...)``: no device ever holds the whole target unless the mesh has
one device. The draft (T5 1.1 small) is replicated on every device unless ``--shard-draft``.
Each GPU count n uses a (data=1, model=n) mesh of the first n devices.

With random weights the draft rarely agrees with the target, so the measured speculative time
is that of a low acceptance rate alpha. Each record therefore also carries the cost ratio c
(draft token time / target token time, both measured here on the same mesh) and the paper's
Theorem 3.8 prediction of the speculative time per token at the alpha that T5-XXL with a T5-small
draft reaches on WMT EnDe (0.75 greedy, 0.62 sampled; Table 3).

Per record: autoregressive and speculative milliseconds per token (median of repeats after a
warm-up; compilation excluded), alpha, tokens per target call, c, the predicted time, compile
seconds, peak device memory, and the all-gathers of whole weights found in the compiled
speculative loop (``spec_decode.sharding.weight_gathers``; it should be 0).
"""

from __future__ import annotations

import argparse
import gc
import json
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from spec_decode import SamplingConfig, autoregressive_decode, sharding, speculative_decode, theory
from spec_decode.bench import time_call
from spec_decode.decode import _lengths, _speculative_jit
from spec_decode.keys import row_keys
from spec_decode.t5 import T5Config, T5Decoding, make_t5_inputs

# T5 1.1 sizes (T5X gin): emb_dim, num_heads, layers (encoder = decoder), mlp_dim; head_dim 64.
SIZES = {
    "small": (512, 6, 8, 1024),
    "base": (768, 12, 12, 2048),
    "large": (1024, 16, 24, 2816),
    "xl": (2048, 32, 24, 5120),
    "xxl": (4096, 64, 24, 10240),
}
PAPER_ALPHA = {0.0: 0.75, 1.0: 0.62}  # T5-XXL target, T5-small draft, WMT EnDe (Table 3)


def t5_config(size: str, layers: int | None, smoke: bool) -> T5Config:
    emb, heads, depth, mlp = SIZES[size]
    if smoke:  # the same shapes' roles at a size a CPU compiles in seconds
        emb, heads, depth, mlp = emb // 64, max(heads // 4, 2), 2, mlp // 64
    return T5Config(
        vocab_size=512 if smoke else 32128, dtype="bfloat16", emb_dim=emb, num_heads=heads,
        num_encoder_layers=layers or depth, num_decoder_layers=layers or depth,
        head_dim=8 if smoke else 64, mlp_dim=mlp, mlp_activations=("gelu", "linear"),
        dropout_rate=0.0,
    )  # fmt: skip


def init_on_mesh(model: T5Decoding, key, mesh, shard: bool):
    """Random bfloat16 params created directly in their final layout (never gathered)."""
    shapes = jax.eval_shape(model.init, key)
    if shard:
        shardings = sharding.param_shardings(shapes, model.logical_axes(), mesh)
    else:
        shardings = jax.tree.map(lambda _: NamedSharding(mesh, PartitionSpec()), shapes)

    def init(key):
        return jax.tree.map(lambda x: x.astype(jnp.bfloat16), model.init(key))

    start = time.perf_counter()
    params = jax.block_until_ready(jax.jit(init, out_shardings=shardings)(key))
    return params, time.perf_counter() - start


def peak_memory_gb(devices) -> float | None:
    stats = [d.memory_stats() or {} for d in devices]
    peaks = [s.get("peak_bytes_in_use") for s in stats]
    return None if None in peaks else round(max(peaks) / 2**30, 2)


def run_one(args, gpus: int) -> dict:
    devices = jax.devices()[:gpus]
    if len(devices) < gpus:
        raise SystemExit(f"--gpus {gpus}: only {len(jax.devices())} devices are visible")
    mesh = sharding.make_mesh(data=1, model=gpus, devices=devices)
    target = T5Decoding(t5_config(args.target_size, args.layers, args.smoke))
    draft = T5Decoding(t5_config(args.draft_size, None, args.smoke))
    target_params, target_init_s = init_on_mesh(target, jax.random.key(0), mesh, shard=True)
    draft_params, _ = init_on_mesh(draft, jax.random.key(1), mesh, shard=args.shard_draft)
    if not args.shard_draft:
        draft = sharding.Replicated(draft)  # its cache stays whole on each device too

    rng = np.random.default_rng(0)
    source = rng.integers(2, target.vocab_size, size=(args.batch, args.source_length))
    source = sharding.shard_batch(jnp.asarray(source, jnp.int32), mesh)
    target_in = make_t5_inputs(target_params, source)
    draft_in = make_t5_inputs(draft_params, source)
    prompts = sharding.shard_batch(jnp.zeros((args.batch, 1), jnp.int32), mesh)  # BOS
    key = jax.random.key(2)
    sampling = SamplingConfig(temperature=args.temperature)
    common = dict(max_new_tokens=args.max_new_tokens, sampling=sampling, mesh=mesh)

    # Compile the speculative loop explicitly to read its HLO; the call below reuses it.
    start = time.perf_counter()
    compiled = _speculative_jit.lower(
        target, target_in, draft, draft_in, prompts, _lengths(prompts, None),
        row_keys(key, args.batch), gamma=args.gamma, max_new_tokens=args.max_new_tokens,
        sampling=sampling, eos_id=None, pad_id=0, mesh=mesh, rules=sharding.STANDARD_RULES,
    ).compile()  # fmt: skip
    compile_s = time.perf_counter() - start
    gathers = sharding.weight_gathers(compiled.as_text(), target_params)
    del compiled

    def per_token_ms(seconds, result):
        return 1000 * seconds / int(np.asarray(result.lengths).sum())

    ar_s, ar = time_call(
        lambda: autoregressive_decode(target, target_in, prompts, None, key, **common),
        args.repeats,
    )
    sd_s, sd = time_call(
        lambda: speculative_decode(
            target, target_in, draft, draft_in, prompts, None, key, gamma=args.gamma, **common
        ),
        args.repeats,
    )
    draft_s, draft_ar = time_call(
        lambda: autoregressive_decode(draft, draft_in, prompts, None, key, **common),
        args.repeats,
    )
    ar_ms, sd_ms = per_token_ms(ar_s, ar), per_token_ms(sd_s, sd)
    c = per_token_ms(draft_s, draft_ar) / ar_ms
    summary = sd.summary()
    paper_alpha = PAPER_ALPHA.get(args.temperature, 0.75)
    predicted = theory.expected_speedup(paper_alpha, args.gamma, c)
    record = {
        "gpus": gpus,
        "device": devices[0].device_kind,
        "target": args.target_size,
        "draft": args.draft_size,
        "draft_sharded": args.shard_draft,
        "batch": args.batch,
        "source_length": args.source_length,
        "gamma": args.gamma,
        "temperature": args.temperature,
        "max_new_tokens": args.max_new_tokens,
        "ar_ms_per_token": round(ar_ms, 3),
        "spec_ms_per_token": round(sd_ms, 3),
        "alpha": round(summary["alpha"], 3),
        "tokens_per_target_call": round(summary["tokens_per_target_call"], 3),
        "c": round(c, 4),
        "paper_alpha": paper_alpha,
        "predicted_spec_ms_per_token_at_paper_alpha": round(ar_ms / predicted, 3),
        "predicted_speedup_at_paper_alpha": round(predicted, 2),
        "weight_all_gathers": len(gathers),
        "target_init_s": round(target_init_s, 1),
        "speculative_compile_s": round(compile_s, 1),
        "peak_memory_gb_per_device": peak_memory_gb(devices),
        "target_param_gb_per_device": round(
            sum(x.addressable_shards[0].data.nbytes for x in jax.tree.leaves(target_params))
            / 2**30,
            2,
        ),
    }
    return record


def markdown(records: list[dict]) -> str:
    head = (
        "| GPUs | target GB/GPU | AR ms/token | spec ms/token (alpha) | tokens/call | c | "
        "predicted spec ms/token at paper alpha (speedup) | weight all-gathers |\n"
        "|---|---|---|---|---|---|---|---|\n"
    )
    rows = [
        f"| {r['gpus']} | {r['target_param_gb_per_device']} | {r['ar_ms_per_token']} | "
        f"{r['spec_ms_per_token']} ({r['alpha']}) | {r['tokens_per_target_call']} | {r['c']} | "
        f"{r['predicted_spec_ms_per_token_at_paper_alpha']} "
        f"({r['predicted_speedup_at_paper_alpha']}x at {r['paper_alpha']}) | "
        f"{r['weight_all_gathers']} |"
        for r in records
    ]
    return head + "\n".join(rows)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gpus", default="1,2,4", help="model-axis sizes, comma-separated")
    parser.add_argument("--target-size", default="xxl", choices=sorted(SIZES))
    parser.add_argument("--draft-size", default="small", choices=sorted(SIZES))
    parser.add_argument("--layers", type=int, default=None, help="override the target's depth")
    parser.add_argument("--shard-draft", action="store_true", help="split the draft too")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--source-length", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--gamma", type=int, default=7)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="tiny models (CPU)")
    parser.add_argument("--out", default="mesh_results.json", help="JSON list, appended to")
    args = parser.parse_args(argv)
    try:
        args.gpus = [int(x) for x in args.gpus.split(",") if x]
    except ValueError:
        parser.error(f"--gpus={args.gpus!r} is not allowed: comma-separated integers")
    if not args.gpus or min(args.gpus) < 1:
        parser.error(f"--gpus={args.gpus!r} is not allowed: integers >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    out = pathlib.Path(args.out)
    records = json.loads(out.read_text()) if out.exists() else []
    for gpus in args.gpus:
        record = run_one(args, gpus)
        gc.collect()  # the previous mesh's weights go before the next ones are made
        print(json.dumps(record), flush=True)
        records.append(record)
        out.write_text(json.dumps(records, indent=1))
    print(markdown(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
