"""T5 1.1 at every size on one accelerator: decode step time against the memory floor.

    python scripts/benchmark_t5_scale.py --sizes small,base,large,xl,xxl --out results/t5

Random weights (T5X's initialisers) cast to bfloat16, built on the device. For each size:
  - the time of one jitted decoder step (K = 1, batch 1, 64 cached positions, 64 encoder
    tokens) and of a whole autoregressive decode divided by its tokens;
  - the memory floor: decoder parameter bytes / device-to-device copy bandwidth measured in
    the same run (every decoder weight must be read once per step);
  - for the target (largest size): the cost of verifying gamma + 1 tokens in one call relative
    to one step, and c = draft step / target step for each smaller size as a draft;
  - the paper's Table 2 expected speedups recomputed with the measured c and the paper's alpha.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from spec_decode import SamplingConfig, autoregressive_decode, theory
from spec_decode.bench import time_call
from spec_decode.t5 import T5Config, T5Decoding, make_t5_inputs

SIZES = {  # emb_dim, heads, layers (encoder = decoder), mlp_dim; head_dim 64 (PAPER.md)
    "small": (512, 6, 8, 1024), "base": (768, 12, 12, 2048), "large": (1024, 16, 24, 2816),
    "xl": (2048, 32, 24, 5120), "xxl": (4096, 64, 24, 10240),
}  # fmt: skip
TABLE_2 = [  # task, draft, T, gamma, alpha, c, expected, measured (the paper's)
    ("EnDe", "small", 0, 7, 0.75, 0.02, 3.2, 3.4), ("EnDe", "base", 0, 7, 0.80, 0.04, 3.3, 2.8),
    ("EnDe", "large", 0, 7, 0.82, 0.11, 2.5, 1.7), ("EnDe", "small", 1, 7, 0.62, 0.02, 2.3, 2.6),
    ("EnDe", "base", 1, 5, 0.68, 0.04, 2.4, 2.4), ("EnDe", "large", 1, 3, 0.71, 0.11, 2.0, 1.4),
    ("CNNDM", "small", 0, 5, 0.65, 0.02, 2.4, 3.1), ("CNNDM", "base", 0, 5, 0.73, 0.04, 2.6, 3.0),
    ("CNNDM", "large", 0, 3, 0.74, 0.11, 2.0, 2.2), ("CNNDM", "small", 1, 5, 0.53, 0.02, 1.9, 2.3),
    ("CNNDM", "base", 1, 3, 0.55, 0.04, 1.8, 2.2), ("CNNDM", "large", 1, 3, 0.56, 0.11, 1.6, 1.7),
]  # fmt: skip


def t5_config(size: str, vocab_size: int = 32128) -> T5Config:
    d, heads, layers, mlp = SIZES[size]
    return T5Config(
        vocab_size=vocab_size, dtype="bfloat16", emb_dim=d, num_heads=heads,
        num_encoder_layers=layers, num_decoder_layers=layers, head_dim=64, mlp_dim=mlp,
        mlp_activations=("gelu", "linear"), dropout_rate=0.0, logits_via_embedding=False,
    )  # fmt: skip


def copy_bandwidth(gigabytes: float = 2.0) -> float:
    """Bytes per second of a device-to-device copy (bytes read + bytes written)."""
    x = jnp.ones((int(gigabytes * 2**30) // 4,), jnp.float32)
    add_one = jax.jit(lambda a: a + 1.0)
    seconds, _ = time_call(lambda: add_one(x), repeats=10)
    return 2 * x.nbytes / seconds


def build(size: str, seed: int, vocab_size: int):
    model = T5Decoding(t5_config(size, vocab_size))
    params = jax.jit(lambda k: jax.tree.map(lambda a: a.astype(jnp.bfloat16), model.init(k)))(
        jax.random.key(seed)
    )
    return model, params


def step_times(model, params, encoder_tokens, ks=(1,)):
    """Median seconds of one jitted extend of K tokens after 64 cached positions, batch 1."""
    inputs = make_t5_inputs(params, encoder_tokens)
    cache = jax.jit(lambda i: model.init_cache(i, 1, 128))(inputs)
    _, cache = jax.jit(model.extend)(inputs, jnp.ones((1, 64), jnp.int32), cache)
    # Only the logits leave the jit: the returned cache would add a copy that the decode loop
    # (which updates it in place) never pays.
    logits = jax.jit(lambda i, t, c: model.extend(i, t, c)[0])
    times = {}
    for k in ks:
        tokens = jnp.ones((1, k), jnp.int32)
        times[k] = time_call(lambda tokens=tokens: logits(inputs, tokens, cache), 20)[0]
    return times


def decode_time_per_token(model, params, encoder_tokens, new_tokens=64):
    inputs = make_t5_inputs(params, encoder_tokens)
    prompt = jnp.zeros((1, 1), jnp.int32)  # BOS
    seconds, out = time_call(
        lambda: (
            autoregressive_decode(
                model, inputs, prompt, max_new_tokens=new_tokens, sampling=SamplingConfig(0.0)
            ).tokens
        ),
        repeats=3,
    )
    return seconds / new_tokens


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="small,base,large,xl,xxl")
    parser.add_argument("--gamma", type=int, default=7)
    parser.add_argument("--vocab-size", type=int, default=32128)
    parser.add_argument("--out", default="t5_scale_results")
    args = parser.parse_args(argv)
    sizes = [s for s in args.sizes.split(",") if s]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        parser.error(f"--sizes={args.sizes!r}: unknown {unknown}; allowed {list(SIZES)}")
    bandwidth = copy_bandwidth()
    print(f"copy bandwidth {bandwidth / 1e12:.2f} TB/s on {jax.devices()[0]}", flush=True)
    encoder_tokens = jax.random.randint(jax.random.key(0), (1, 64), 2, args.vocab_size)
    rows, steps = [], {}
    target = sizes[-1]
    for size in sizes:
        start = time.perf_counter()
        model, params = build(size, 0, args.vocab_size)
        decoder_bytes = sum(a.nbytes for a in jax.tree.leaves(params["decoder"]))
        ks = (1, args.gamma + 1) if size == target else (1,)
        times = step_times(model, params, encoder_tokens, ks)
        steps[size] = times[1]
        per_token = decode_time_per_token(model, params, encoder_tokens)
        floor = decoder_bytes / bandwidth
        row = {
            "size": size, "params": int(sum(a.size for a in jax.tree.leaves(params))),
            "decoder_bytes": int(decoder_bytes), "memory_floor_ms": 1e3 * floor,
            "step_ms": 1e3 * times[1], "decode_ms_per_token": 1e3 * per_token,
            "floor_fraction_step": floor / times[1], "floor_fraction_decode": floor / per_token,
        }  # fmt: skip
        if size == target:
            row["verify_cost_ratio"] = times[args.gamma + 1] / times[1]
        rows.append(row)
        print(json.dumps(row), f"({time.perf_counter() - start:.0f} s)", flush=True)
        del params
    costs = {s: steps[s] / steps[target] for s in sizes[:-1]}
    table = []
    for task, draft, temperature, gamma, alpha, c_paper, expected, measured in TABLE_2:
        if draft in costs:
            table.append({
                "task": task, "draft": draft, "T": temperature, "gamma": gamma, "alpha": alpha,
                "c_paper": c_paper, "c_measured": costs[draft], "expected_paper": expected,
                "measured_paper": measured,
                "expected_with_our_c": theory.expected_speedup(alpha, gamma, costs[draft]),
            })  # fmt: skip
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"device": str(jax.devices()[0]), "copy_bandwidth_bytes_per_s": bandwidth,
              "sizes": rows, "c_vs_target": costs, "table_2": table, "target": target}  # fmt: skip
    (out / "t5_scale.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({"c_vs_target": costs}))
    for r in table:
        print(f"{r['task']} {r['draft']} T={r['T']} g={r['gamma']} a={r['alpha']} "
              f"c={r['c_measured']:.3f} -> {r['expected_with_our_c']:.2f} "
              f"(paper {r['expected_paper']}, measured {r['measured_paper']})")  # fmt: skip
    return 0 if np.isfinite(bandwidth) else 1


if __name__ == "__main__":
    sys.exit(main())
