"""Prefill throughput on one accelerator: prompt tokens/s of SmolLM2 and T5 1.1 (random weights).

    python scripts/prefill_throughput.py --seconds 420 --out prefill_throughput.json   # one H200
    JAX_PLATFORMS=cpu python scripts/prefill_throughput.py --smoke --out /tmp/prefill.json

Random bfloat16 weights (throughput depends on shapes only), in this order so that a spent
budget cuts the largest T5 last:
  - the SmolLM2-135M-shaped Llama (``kernel_budget.llama_config``: 30 layers, D 576, 9/3 heads,
    H 64, F 1536, V 49152) with the GPU fast path's fused projections and attention, but its
    layers scanned (``--llama-unroll``, default 1: 30 layers unrolled cost ~28 s of compilation
    per program on the H200, and a prefill is bound by its matmuls, not by kernel launches).
    For each (B, P) in ``LLAMA_SHAPES`` with a cache of exactly P positions:
      'chunked_prefill': ``core.prefill.chunked_prefill`` (C = ``--chunk`` tokens per call, no
        logits, the cache read in blocks below the rows' lengths), what the decoders run;
      'extend_with_logits': the old way, one ``extend`` over the whole prompt returning its
        logits [B, P, V]; skipped (with the reason) where its scores and logits would not fit.
  - T5 1.1 small, base, large, xxl (``_t5_bench.t5_config``, weights made on the device one
    array at a time): 'encode_and_init_cache', ``T5Decoding.init_cache`` on S source tokens
    (the encoder and every layer's cross keys and values), for each (B, S) in ``T5_SHAPES``.

Each record: model, size, method, batch, tokens (per row), seconds (median of ``--repeats``
calls after one warm-up call, ``spec_decode.bench.time_calls``), tokens_per_s (batch * tokens /
seconds), compile_s, wall_s (the whole measurement), device, dtype and the configuration. One
progress line per measurement goes to stdout; the JSON file is rewritten after every
measurement, so a killed run keeps what it measured; none starts after ``--seconds``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import json
import pathlib
import sys
import time

import _t5_bench as tb
import jax
from kernel_budget import llama_config, llama_variant

from spec_decode.bench import time_calls
from spec_decode.core import prefill as prefill_lib
from spec_decode.models.llama import LlamaLM
from spec_decode.models.llama.config import fast_path
from spec_decode.models.t5 import T5Decoding, make_t5_inputs

LLAMA_SHAPES = ((1, 512), (1, 2048), (1, 8192), (8, 2048))  # (B, P)
T5_SHAPES = ((1, 512), (1, 2048), (8, 512))  # (B, S)
SMOKE_LLAMA_SHAPES = ((2, 48),)  # two chunks of 32, the second overlapping the first
SMOKE_T5_SHAPES = ((1, 32), (2, 16))
T5_SIZES = ("small", "base", "large", "xxl")
T5_DECODER_LENGTH = 256  # L of the T5 self-attention cache that init_cache allocates
DTYPE = "bfloat16"


def _timed(fn, args: tuple, repeats: int) -> dict:
    """Compile ``fn`` (jitted) for ``args``; its compile seconds and median call seconds."""
    start = time.perf_counter()
    compiled = fn.lower(*args).compile()
    compile_s = time.perf_counter() - start
    seconds, _ = time_calls({"call": lambda: compiled(*args)}, repeats)["call"]
    return {"compile_s": compile_s, "call_s": seconds}


def _extend_bytes(config, batch: int, length: int) -> int:
    """Rough peak bytes of one extend over P = ``length`` tokens into an L = P cache: float32
    scores [B, N, P, L + P] (and their softmax) of one layer, plus the logits [B, P, V]."""
    scores = batch * config.num_heads * length * 2 * length
    return 4 * (2 * scores + batch * length * config.vocab_size)


def _device_bytes() -> int | None:
    stats = jax.devices()[0].memory_stats() or {}
    return stats.get("bytes_limit")


def llama_tasks(args):
    """(label, measure) per Llama (method, B, P); the params are made once, on first use."""
    layers = 2 if args.smoke else 30
    base = llama_variant(llama_config(layers, args.smoke), "new").config
    base = dataclasses.replace(base, layer_unroll=args.llama_unroll)
    params = functools.cache(lambda: LlamaLM(base).init(jax.random.key(0)))  # the fused tree
    size = "smoke" if args.smoke else "smollm2-135m"
    for batch, length in args.llama_shapes:
        model = LlamaLM(dataclasses.replace(base, max_length=length))
        unroll, attention = fast_path(model.config)
        label = {
            "model": "llama", "size": size, "batch": batch, "tokens": length,
            "cache_length": length, "layers": layers, "layer_unroll": unroll,
            "fused_projections": True,
        }  # fmt: skip

        def chunked(model=model, batch=batch, length=length):
            run = jax.jit(functools.partial(prefill_lib.chunked_prefill, model, chunk=args.chunk))
            return _timed(run, _llama_args(model, params(), batch, length), args.repeats)

        def extend(model=model, batch=batch, length=length):
            needed, limit = _extend_bytes(model.config, batch, length), _device_bytes()
            if limit is not None and needed > limit // 2:
                return {"skipped": f"needs ~{needed / 2**30:.0f} GB of {limit / 2**30:.0f} GB"}
            run = jax.jit(model.extend)  # returns the logits: nothing is dead code
            return _timed(run, _llama_args(model, params(), batch, length), args.repeats)

        yield {**label, "method": "chunked_prefill", "chunk": args.chunk,
               "attention": "blocked"}, chunked  # fmt: skip
        yield {**label, "method": "extend_with_logits", "attention": attention}, extend


def _llama_args(model: LlamaLM, params, batch: int, length: int) -> tuple:
    tokens = jax.random.randint(jax.random.key(1), (batch, length), 0, model.vocab_size)
    return params, tokens, model.init_cache(params, batch, length)


def t5_tasks(args):
    """(label, measure) per T5 (size, B, S), sizes small -> xxl; each size's params made on
    its first measurement and dropped with its last."""
    for size in args.t5_sizes:
        model = T5Decoding(tb.t5_config(size, args.smoke))
        params = functools.cache(lambda model=model: tb.random_params(model, jax.random.key(0)))
        for batch, length in args.t5_shapes:
            label = {
                "model": "t5", "size": size, "method": "encode_and_init_cache", "batch": batch,
                "tokens": length, "decoder_cache_length": T5_DECODER_LENGTH,
                "layers": model.config.num_encoder_layers,
                "attention": model.config.attention_implementation,
            }  # fmt: skip

            def encode(model=model, params=params, batch=batch, length=length):
                source = jax.random.randint(
                    jax.random.key(1), (batch, length), 2, model.vocab_size
                )  # no padding: every source token is encoded
                run = jax.jit(lambda inputs: model.init_cache(inputs, batch, T5_DECODER_LENGTH))
                return _timed(run, (make_t5_inputs(params(), source),), args.repeats)

            yield label, encode


def _progress(record: dict) -> str:
    name = f"{record['model']} {record['size']} {record['method']} B={record['batch']} " + (
        f"{'P' if record['model'] == 'llama' else 'S'}={record['tokens']}"
    )
    if "error" in record or "skipped" in record:
        return f"{name}: {record.get('error') or 'skipped: ' + record['skipped']}"
    return (
        f"{name}: {record['tokens_per_s']:,.0f} tokens/s ({1e3 * record['seconds']:.2f} ms "
        f"a call, compile {record['compile_s']:.1f} s)"
    )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=None, help="start nothing after this")
    parser.add_argument("--t5-sizes", default=",".join(T5_SIZES), help="run small -> xxl")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls (median)")
    parser.add_argument("--chunk", type=int, default=prefill_lib.PREFILL_CHUNK, help="C")
    parser.add_argument("--llama-unroll", type=int, default=1, help="layers per scan trip")
    parser.add_argument("--smoke", action="store_true", help="toy widths on a CPU, in seconds")
    parser.add_argument("--out", default="prefill_throughput.json")
    args = parser.parse_args(argv)
    sizes = [s for s in args.t5_sizes.split(",") if s]
    if set(sizes) - set(T5_SIZES):
        parser.error(f"--t5-sizes={args.t5_sizes!r} is not allowed: sizes among {T5_SIZES}")
    args.t5_sizes = sorted(set(sizes), key=T5_SIZES.index)  # smallest first
    for name in ("repeats", "chunk", "llama_unroll"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}={getattr(args, name)} is not allowed: >= 1")
    if args.seconds is not None and args.seconds <= 0:
        parser.error(f"--seconds={args.seconds} is not allowed: a positive number of seconds")
    args.llama_shapes, args.t5_shapes = LLAMA_SHAPES, T5_SHAPES
    if args.smoke:
        args.llama_shapes, args.t5_shapes = SMOKE_LLAMA_SHAPES, SMOKE_T5_SHAPES
        args.repeats, args.chunk, args.t5_sizes = 2, 32, args.t5_sizes[:1]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    device = jax.devices()[0].device_kind
    tb.log(f"jax {jax.__version__} on {device}; T5 sizes {args.t5_sizes}")
    header = {"device": device, "backend": jax.default_backend(), "jax": jax.__version__,
              "smoke": args.smoke, "dtype": DTYPE, "repeats": args.repeats}  # fmt: skip
    records = []
    tasks = itertools.chain(llama_tasks(args), t5_tasks(args))  # lazy: params made when needed

    def measure(task):
        label, fn = task
        return {**label, **fn()}

    for record in tb.within_budget(tasks, "task", args.seconds, measure):
        if "task" in record:  # failed or not started: labelled like the others
            label, _ = record.pop("task")
            record = {**label, **record}
        # within_budget's "seconds" is the whole measurement; a record's is one timed call.
        record["wall_s"] = record.pop("seconds", None)
        record.update(device=device, dtype=DTYPE)
        if "call_s" in record:
            record["seconds"] = record.pop("call_s")
            record["tokens_per_s"] = record["batch"] * record["tokens"] / record["seconds"]
        records.append(record)
        tb.log(_progress(record))
        out.write_text(json.dumps(tb.finite({**header, "records": records}), indent=1))
    return 0 if all("error" not in r for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
