"""Kernels per decode step and ms per step, old path against fast path, for the small models.

    python scripts/kernel_budget.py --seconds 420 --out kernel_budget.json      # one H200
    JAX_PLATFORMS=cpu python scripts/kernel_budget.py --smoke --out /tmp/kernel_budget.json

Models, batch 1, random bfloat16 weights made on the device: the SmolLM2-135M-shaped Llama
target (30 layers, D 576, 9/3 heads, H 64, F 1536, V 49152), a 2-layer draft of the same width,
and the T5 1.1 decoders small, base, large, xxl (weights one array at a time, as
``_t5_bench.random_params``). Each in every variant (``VARIANTS``): 'old' is today's path
(scanned layers, separate projections, einsum attention), 'new' the fast one (layers unrolled,
fused projections, ``jax.nn.dot_product_attention``), 'pallas' the new one with rotary and
attention in one Triton kernel (``models/llama/pallas_attention.py``, GPUs), the others single
steps between them.
T5's layers are always unrolled, so it runs 'old', 'unrolled_fused' (fused T5 params from
``T5Decoding.fuse_params``), 'new' and 'cudnn'; the smoke run keeps 'old' and 'new' for T5.

For each (model, variant):
  - kernels per decode step: ``spec_decode.bench.decode_step_kernels`` on the compiled
    autoregressive loop (the same executable is then timed);
  - ms per step in the loop: an autoregressive decode of ``--new-tokens`` tokens (warm-up
    first, median of repeats) over the tokens generated;
  - for 'old' and 'new': one K = 1 and one K = 8 (gamma + 1 = 8) ``extend`` per trip of a jitted
    loop after 64 cached positions (``benchmark_t5_scale.step_loop``), and their ratio, the
    cost of verification in target steps;
then c = draft step / target step per variant (Llama draft vs target; T5 sizes vs xxl). The
same measurements run again in a subprocess with XLA command buffers enabled
(``COMMAND_BUFFER_FLAGS`` in XLA_FLAGS, read at start-up), for the Llama pair and T5 small.

Progress goes to stdout; the JSON file is rewritten after every measurement, so a killed run
keeps what it measured; no new measurement starts after ``--seconds``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import _t5_bench as tb
import jax
import jax.numpy as jnp
import numpy as np
from benchmark_t5_scale import CONTEXT, step_loop

from spec_decode.bench import decode_step_kernels, time_calls
from spec_decode.core.decoder import DecoderParams, SpeculativeDecoder
from spec_decode.core.sampling import SamplingConfig
from spec_decode.models.llama import LlamaConfig, LlamaLM
from spec_decode.models.t5 import T5Decoding, make_t5_inputs

COMMAND_BUFFER_FLAGS = (
    "--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN,WHILE,CONDITIONAL"
)
# name -> (layers unrolled, fused projections, attention); T5 (never scanned) reads the last two.
VARIANTS = {
    "old": (False, False, "einsum"),
    "unrolled": (True, False, "einsum"),
    "unrolled_fused": (True, True, "einsum"),
    "new": (True, True, "xla"),
    "cudnn": (True, True, "cudnn"),
    "pallas": (True, True, "pallas"),  # rotary + attention in one Triton kernel (Llama only)
}
TIMED_STEPS = ("old", "new", "pallas")  # variants whose K = 1 and K = 8 steps are timed too
VERIFY_TOKENS = 8  # gamma + 1 with gamma 7
T5_SIZES = ("small", "base", "large", "xxl")


def llama_config(layers: int, smoke: bool) -> LlamaConfig:
    """SmolLM2-135M's shape (spec_decode/smollm2's GGUF) in bfloat16; ``smoke``: a toy width."""
    if smoke:
        return LlamaConfig(
            vocab_size=256, num_layers=layers, emb_dim=64, num_heads=4, num_kv_heads=2,
            head_dim=16, mlp_dim=128, dtype="bfloat16", param_dtype="bfloat16", max_length=512,
        )  # fmt: skip
    return LlamaConfig(
        vocab_size=49152, num_layers=layers, emb_dim=576, num_heads=9, num_kv_heads=3,
        head_dim=64, mlp_dim=1536, rope_theta=100000.0, norm_eps=1e-5, dtype="bfloat16",
        param_dtype="bfloat16", max_length=2048,
    )  # fmt: skip


def llama_variant(config: LlamaConfig, variant: str) -> LlamaLM:
    unrolled, fused, attention = VARIANTS[variant]
    return LlamaLM(
        dataclasses.replace(
            config, layer_unroll=config.num_layers if unrolled else 1,
            fused_projections=fused, attention=attention,
        )
    )  # fmt: skip


def measure(model, params, prompt, args, timed_steps: bool) -> dict:
    """Kernels per step and ms per step of one model and params (see the module docstring)."""
    decoder = SpeculativeDecoder(model, max_new_tokens=args.new_tokens, sampling=SamplingConfig())
    record: dict = {}
    start = tb.elapsed()
    compiled = decoder.lower(DecoderParams(params, None), prompt).compile()
    record["compile_s"] = tb.elapsed() - start
    count = decode_step_kernels(compiled.as_text())
    record.update(
        kernels_per_step=count.total, kernels_by_opcode=count.by_opcode,
        inner_loops=count.inner_loops, unknown_trip_counts=count.unknown_trips,
    )  # fmt: skip
    inputs = decoder.inputs(prompt)
    timed = time_calls({"decode": lambda: compiled(DecoderParams(params, None), *inputs)},
                       args.repeats)  # fmt: skip
    seconds, result = timed["decode"]
    generated = int(np.asarray(result.lengths).sum())
    record["decode_ms_per_token"] = 1e3 * seconds / generated
    if timed_steps:
        cache = model.init_cache(params, 1, 2 * CONTEXT)
        cache = cache.replace(lengths=jnp.full((1,), CONTEXT, jnp.int32))
        loops = {k: step_loop(model, k, args.step_iterations) for k in (1, VERIFY_TOKENS)}
        steps = time_calls(
            {str(k): (lambda run=run: run(params, cache)) for k, run in loops.items()},
            args.repeats,
        )
        step, verify = (steps[str(k)][0] / args.step_iterations for k in (1, VERIFY_TOKENS))
        record.update(step_ms=1e3 * step, verify_ms=1e3 * verify, verify_over_step=verify / step)
    return record


def llama_tasks(args):
    """(name, measure) per Llama model and variant; params made once per model."""
    prompt = jnp.ones((1, 8), jnp.int32)
    depths = (2, 1) if args.smoke else (30, 2)
    for model_name, layers in zip(("llama_target", "llama_draft"), depths, strict=True):
        config = llama_config(layers, args.smoke)
        state = {}

        def params(fused, config=config, state=state):
            if "canonical" not in state:
                state["canonical"] = LlamaLM(config).init(jax.random.key(0))
            if fused and "fused" not in state:
                state["fused"] = LlamaLM(config).fuse_params(state["canonical"])
            return state["fused" if fused else "canonical"]

        for variant in args.variants:
            if args.smoke and model_name != "llama_target" and variant != "new":
                continue  # the smoke run's before/after is the target's
            model = llama_variant(config, variant)
            yield (
                model_name, variant,
                lambda model=model, params=params, variant=variant: measure(
                    model, params(model.config.fused_projections), prompt, args,
                    variant in TIMED_STEPS,
                ),
            )  # fmt: skip


def t5_tasks(args, sizes):
    for size in sizes:
        config = dataclasses.replace(tb.t5_config(size, args.smoke), attention="einsum")
        state = {}

        def inputs(fused, config=config, state=state):
            if "canonical" not in state:
                params = tb.random_params(T5Decoding(config), jax.random.key(0))
                encoder = jax.random.randint(jax.random.key(1), (1, CONTEXT), 2, config.vocab_size)
                state["canonical"] = make_t5_inputs(params, encoder)
            if fused and "fused" not in state:
                canonical = state["canonical"]
                params = T5Decoding(config).fuse_params(canonical.params)
                state["fused"] = make_t5_inputs(params, canonical.encoder_input_tokens)
            return state["fused" if fused else "canonical"]

        for variant in args.variants:
            if variant in ("unrolled", "pallas"):
                continue  # T5's layers are never scanned; the Pallas kernel is Llama's
            _, fused, attention = VARIANTS[variant]
            model = T5Decoding(
                dataclasses.replace(config, attention=attention, fused_projections=fused)
            )
            yield (
                f"t5_{size}", variant,
                lambda model=model, inputs=inputs, variant=variant: measure(
                    model, inputs(model.config.fused_projections), jnp.zeros((1, 1), jnp.int32),
                    args, variant in TIMED_STEPS,
                ),
            )  # fmt: skip


def command_buffer_run(args, out: pathlib.Path) -> dict:
    """This script again in a subprocess with command buffers on; its JSON."""
    child_out = out.with_name(out.stem + "_command_buffer.json")
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {COMMAND_BUFFER_FLAGS}".strip()
    env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"  # this process still holds its memory
    remaining = max(args.seconds - tb.elapsed(), 30) if args.seconds else None
    command = [
        sys.executable, __file__, "--child", "--t5-sizes", "small", "--out", str(child_out),
        "--variants", ",".join(v for v in args.variants if v in TIMED_STEPS),
        "--new-tokens", str(args.new_tokens), "--repeats", str(args.repeats),
        "--step-iterations", str(args.step_iterations),
    ]  # fmt: skip
    command += (["--seconds", str(remaining)] if remaining else []) + ["--smoke"] * args.smoke
    tb.log(f"command buffers: {' '.join(command[1:])}")
    done = subprocess.run(command, env=env, timeout=remaining and remaining + 60)
    result = json.loads(child_out.read_text()) if child_out.exists() else {}
    return {"xla_flags": env["XLA_FLAGS"], "returncode": done.returncode, **result}


def summary(records: list[dict], args) -> dict:
    """Every record, and c = draft step / target step per variant."""
    ok = {(r["model"], r["variant"]): r for r in records if "error" not in r}
    ratios = {}
    pairs = [("llama_draft", "llama_target")] + [(f"t5_{s}", "t5_xxl") for s in T5_SIZES[:-1]]
    for draft, target in pairs:
        for variant in args.variants:
            d, t = ok.get((draft, variant)), ok.get((target, variant))
            if d and t:
                ratios[f"{draft}/{target}/{variant}"] = {
                    "c_decode": d["decode_ms_per_token"] / t["decode_ms_per_token"],
                    **({"c_step": d["step_ms"] / t["step_ms"]} if "step_ms" in d else {}),
                }
    return tb.finite(
        {
            "device": jax.devices()[0].device_kind, "backend": jax.default_backend(),
            "jax": jax.__version__, "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "smoke": args.smoke, "new_tokens": args.new_tokens, "records": records,
            "cost_ratios": ratios,
        }
    )  # fmt: skip


def markdown(result: dict) -> str:
    lines = [
        f"{result['device']} ({result['backend']}), jax {result['jax']}, batch 1",
        "",
        "| model | variant | kernels/step | decode ms/token | step ms | verify 8 / step |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["records"]:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['variant']} | failed: {r['error'][:60]} |||")
            continue

        def fmt(key, r=r):
            return "-" if r.get(key) is None else f"{r[key]:.3f}"

        lines.append(
            f"| {r['model']} | {r['variant']} | {r['kernels_per_step']} | "
            f"{fmt('decode_ms_per_token')} | {fmt('step_ms')} | {fmt('verify_over_step')} |"
        )
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help="among " + ",".join(VARIANTS)
    )
    parser.add_argument("--t5-sizes", default=",".join(T5_SIZES), help="T5 1.1 decoders")
    parser.add_argument("--new-tokens", type=int, default=128, help="tokens per timed decode")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (median)")
    parser.add_argument("--step-iterations", type=int, default=32, help="steps per timed loop")
    parser.add_argument("--seconds", type=float, default=None, help="start nothing after this")
    parser.add_argument("--smoke", action="store_true", help="toy widths on a CPU, in seconds")
    parser.add_argument("--no-command-buffer", action="store_true", help="skip the subprocess")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="kernel_budget.json")
    args = parser.parse_args(argv)
    args.variants = [v for v in args.variants.split(",") if v]
    args.t5_sizes = [s for s in args.t5_sizes.split(",") if s]
    if not args.variants or set(args.variants) - set(VARIANTS):
        parser.error(f"--variants={args.variants} is not allowed: among {list(VARIANTS)}")
    if set(args.t5_sizes) - set(T5_SIZES):
        parser.error(f"--t5-sizes={args.t5_sizes} is not allowed: among {list(T5_SIZES)}")
    if args.smoke:
        args.new_tokens, args.repeats, args.step_iterations = 8, 2, 4
        args.variants = [v for v in args.variants if v in TIMED_STEPS]
        args.t5_sizes = args.t5_sizes[:1]
    if jax.default_backend() != "gpu":  # cuDNN needs a GPU; Pallas would run interpreted
        args.variants = [v for v in args.variants if v not in ("cudnn", "pallas")]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tb.log(f"jax {jax.__version__} on {jax.devices()[0].device_kind}; variants {args.variants}")
    tasks = [*llama_tasks(args), *t5_tasks(args, args.t5_sizes[:1])]
    if args.child and args.smoke:  # the subprocess's path, checked on the smallest model
        tasks = [task for task in tasks if task[:2] == ("llama_draft", "new")]
    if not args.child and not args.no_command_buffer:
        tasks.append(("command_buffer", "old+new", None))
    tasks += list(t5_tasks(args, args.t5_sizes[1:]))
    records, result = [], {}

    def run(task):
        model, variant, fn = task
        if fn is None:
            return {"model": model, "variant": variant, **command_buffer_run(args, out)}
        record = {"model": model, "variant": variant, **fn()}
        tb.log(
            f"{model} {variant}: {record['kernels_per_step']} kernels/step, "
            f"{record['decode_ms_per_token']:.3f} ms/token"
            + (f", step {record['step_ms']:.3f} ms, verify 8 / step "
               f"{record['verify_over_step']:.2f}" if "step_ms" in record else "")
        )  # fmt: skip
        return record

    for record in tb.within_budget(tasks, "task", args.seconds, run):
        if "task" in record:  # failed or not started: name it as the others are
            model, variant, _ = record.pop("task")
            record = {"model": model, "variant": variant, **record}
        if record["model"] == "command_buffer":
            result_command_buffer = record
        else:
            records.append(record)
            result_command_buffer = result.get("command_buffer")
        result = summary(records, args)
        if result_command_buffer is not None:
            result["command_buffer"] = result_command_buffer
        out.write_text(json.dumps(result, indent=1))
    print(markdown(result), flush=True)
    return 0 if all("error" not in r for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
