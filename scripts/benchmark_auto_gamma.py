"""Run-time gamma against every fixed gamma and plain decoding, in one process per configuration.

    python scripts/benchmark_auto_gamma.py --smoke --out /tmp/auto          # tiny models, CPU
    python scripts/benchmark_auto_gamma.py --drafts smollm2-draft,random --batches 1,8,64 \
        --gammas 1,2,3,4,6 --temperatures 0 --out results/auto

For each (draft, batch, temperature) the round costs are measured first
(``spec_decode.bench.measure_round_costs``, in-loop), then the autoregressive decoder, each
fixed-gamma decoder and the "auto" decoder are timed with their repeats interleaved
(``bench.time_calls``), on the same prompts. The record holds tokens per second of each, the
speedups over autoregressive, auto over the best fixed gamma, alpha, and how often auto chose
each gamma. Draft "random" is a 2-layer model of the target's width with random weights: alpha
near 0, the case where speculation must switch itself off.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

from spec_decode import DecoderParams, SamplingConfig, SpeculativeDecoder
from spec_decode.app import registry
from spec_decode.bench import time_calls
from spec_decode.bench.costs import measure_round_costs
from spec_decode.core.policy import GammaPolicy
from spec_decode.models import LlamaConfig, LlamaLM, tiny_llama


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--drafts", default="smollm2-draft,prompt-lookup,random")
    parser.add_argument("--gammas", type=_ints, default=_ints("1,2,3,4,6"))
    parser.add_argument("--max-gamma", type=int, default=6)
    parser.add_argument("--batches", type=_ints, default=_ints("1,8,64"))
    parser.add_argument("--temperatures", default="0")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    parser.add_argument("--gguf", default=None)
    parser.add_argument(
        "--layer-unroll", type=int, default=None,
        help="target layers per scan trip (default: the backend's; 1 compiles fastest)",
    )  # fmt: skip
    parser.add_argument(
        "--attention", default=None,
        help="the Llama models' attention (LlamaConfig.attention; default: the backend's)",
    )  # fmt: skip
    parser.add_argument("--out", default="auto_gamma_results")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    args.drafts = [name for name in args.drafts.split(",") if name]
    args.temperatures = [float(t) for t in args.temperatures.split(",") if t]
    if args.smoke:
        args.drafts, args.gammas, args.batches = ["tiny", "random"], [1, 3], [1, 2]
        args.max_gamma, args.max_new_tokens, args.repeats = 3, 16, 1
        args.dtype, args.temperatures = "float32", [0.0]
    return args


def _random_draft(config: LlamaConfig, seed: int = 7):
    """Two layers of the target's shape with random weights: a draft that agrees by chance."""
    draft = LlamaLM(dataclasses.replace(config, num_layers=2))
    return draft, draft.init(jax.random.key(seed))


def load(args):
    """Target, params, {draft name: (model, params)}, prompts [B0, P], lengths [B0], eos."""
    if args.smoke:
        target, t_params = tiny_llama(2, 0, emb_dim=64, head_dim=8, max_length=256)
        drafts = {"tiny": tiny_llama(1, 1, emb_dim=32, head_dim=8, max_length=256)}
        drafts["random"] = _random_draft(target.config)
        prompts = jax.random.randint(jax.random.key(2), (64, 8), 2, 64)
        return target, t_params, drafts, prompts, jnp.full((64,), 8), None
    from spec_decode.distill.data import chat_prompts
    from spec_decode.distill.prompts import held_out_prompts

    drafts = {}
    for name in args.drafts:
        if name == "random":
            continue
        target, draft, draft_params = registry.load_pair(
            registry.DEFAULT_TARGET, name, dtype=args.dtype, gguf=args.gguf
        )
        drafts[name] = (draft, draft_params)
    if "random" in args.drafts:
        if not drafts:
            target = registry.load_target(registry.DEFAULT_TARGET, args.dtype, args.gguf)
        drafts["random"] = _random_draft(target.model.config)
    prompts, lengths = chat_prompts(target.tokenizer, held_out_prompts()[:64])
    model = target.model
    if args.layer_unroll is not None:
        model = LlamaLM(dataclasses.replace(model.config, layer_unroll=args.layer_unroll))
    if args.attention is not None:
        model = registry.with_attention(model, args.attention)
        drafts = {
            n: (registry.with_attention(d, args.attention), p) for n, (d, p) in drafts.items()
        }
    return model, target.params, drafts, prompts, lengths, target.tokenizer.eos_id


def measure(args, target, t_params, draft, d_params, prompts, lengths, eos, batch, temperature):
    rows = np.arange(batch) % prompts.shape[0]
    prompts, lengths = jnp.asarray(prompts)[rows], jnp.asarray(lengths)[rows]
    keys = jax.random.split(jax.random.key(0), batch)
    costs = measure_round_costs(
        target, t_params, draft, d_params, batch=batch, max_gamma=args.max_gamma,
        sampling=SamplingConfig(temperature=temperature),
    )  # fmt: skip
    common = dict(
        max_new_tokens=args.max_new_tokens, sampling=SamplingConfig(temperature=temperature),
        eos_id=eos,
    )  # fmt: skip
    params = DecoderParams(t_params, d_params)
    decoders = {"autoregressive": SpeculativeDecoder(target, **common)}
    for gamma in args.gammas:
        decoders[f"gamma={gamma}"] = SpeculativeDecoder(target, draft, gamma, **common)
    decoders["auto"] = SpeculativeDecoder(
        target, draft, "auto", policy=GammaPolicy(costs), **common
    )
    timed = time_calls(
        {name: (lambda d=d: d.run(params, prompts, lengths, keys)) for name, d in decoders.items()},
        args.repeats,
    )
    speed = {}
    for name, (seconds, result) in timed.items():
        speed[name] = int(np.asarray(result.lengths).sum()) / seconds
    fixed = {name: s for name, s in speed.items() if name.startswith("gamma=")}
    best = max(fixed, key=fixed.get)
    auto = timed["auto"][1].summary()
    return {
        "batch": batch,
        "temperature": temperature,
        "max_new_tokens": args.max_new_tokens,
        "tokens_per_s": speed,
        "speedup": {name: s / speed["autoregressive"] for name, s in speed.items()},
        "best_fixed": best,
        "auto_over_best_fixed": speed["auto"] / fixed[best],
        "auto_over_autoregressive": speed["auto"] / speed["autoregressive"],
        "alpha": {n: timed[n][1].summary()["alpha"] for n in timed if n != "autoregressive"},
        "auto_rounds_per_gamma": auto["rounds_per_gamma"],
        "costs": {"c": costs.draft, "verify": list(costs.verify), "rounds": list(costs.rounds)},
        "identical_greedy": temperature == 0
        and all(
            np.array_equal(np.asarray(r.tokens), np.asarray(timed["autoregressive"][1].tokens))
            for _, r in timed.values()
        ),
    }


def table(records: list[dict]) -> str:
    lines = [
        "| draft | batch | T | best fixed | its speedup | auto speedup | auto / best | "
        "auto gammas (rounds per 0..G) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(
            f"| {r['draft']} | {r['batch']} | {r['temperature']:g} | {r['best_fixed']} | "
            f"{r['speedup'][r['best_fixed']]:.2f}x | {r['auto_over_autoregressive']:.2f}x | "
            f"{r['auto_over_best_fixed']:.3f} | {r['auto_rounds_per_gamma']} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    target, t_params, drafts, prompts, lengths, eos = load(args)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for name in args.drafts:
        draft, d_params = drafts[name]
        for batch in args.batches:
            for temperature in args.temperatures:
                record = measure(
                    args, target, t_params, draft, d_params, prompts, lengths, eos, batch,
                    temperature,
                )  # fmt: skip
                record = {"draft": name, **record, "device": str(jax.devices()[0])}
                records.append(record)
                print(json.dumps(record), flush=True)
                (out / "auto_gamma.json").write_text(json.dumps(records, indent=1))
    (out / "auto_gamma.md").write_text(table(records) + "\n")
    print(table(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
