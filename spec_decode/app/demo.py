"""``spec-decode demo``: SmolLM2 with its draft, autoregressive vs speculative greedy, timed.

Both decoders are the library's jitted while loops, run in the same process on the same built-in
chat prompts, one prompt per call (batch 1, where speculative decoding pays most). Each decoder
is compiled and warmed up first; then every repeat decodes every prompt with both, and a
decoder's time is the median over repeats of its total over the prompts
(``jax.block_until_ready`` on each result). Greedy speculative decoding must return the target's
own greedy tokens, so the demo also checks that both texts are identical.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from spec_decode.app import registry
from spec_decode.app.generation import make_batch
from spec_decode.core import stats
from spec_decode.core.decoder import DecoderParams, SpeculativeDecoder
from spec_decode.core.sampling import SamplingConfig
from spec_decode.core.state import DecodeResult
from spec_decode.core.validation import check_gamma, check_int

PROMPTS = (
    "Write a Python function that checks whether a number is prime.",
    "Explain in two sentences why the sky is blue.",
    "What is the difference between a list and a tuple in Python?",
)
GREEDY = SamplingConfig(temperature=0.0)


@dataclasses.dataclass(frozen=True)
class DemoOptions:
    draft: str = registry.DEFAULT_DRAFT
    gamma: int | str = 4  # or "auto": chosen each round over costs measured here
    max_new_tokens: int = 64
    repeats: int = 3
    prompts: tuple[str, ...] = PROMPTS
    target: str = registry.DEFAULT_TARGET
    draft_dir: str | None = None  # smollm2-draft's or smollm2-eagle's weights (None: the asset)

    def __post_init__(self):
        registry.check_name("draft", self.draft, registry.DRAFTS)
        registry.check_name("target", self.target, registry.TARGETS)
        if self.gamma != "auto":
            check_gamma(self.gamma, with_draft=True)
        check_int("max_new_tokens", self.max_new_tokens, 1)
        check_int("repeats", self.repeats, 1)
        if not self.prompts:
            raise ValueError("prompts=() is not allowed: the demo needs at least one prompt")


def run_demo(options: DemoOptions = DemoOptions(), progress: bool = True) -> dict[str, Any]:
    """Time both decoders on the demo prompts; return the report ``--json`` prints."""
    from tqdm.auto import tqdm

    target = registry.load_target(options.target)
    draft, draft_params = registry.load_draft(options.draft, target, options.draft_dir)
    tokenizer = target.tokenizer
    encoded = [target.encode_prompt(prompt) for prompt in options.prompts]
    width = max(len(ids) for ids in encoded)  # one padded width: one compilation per decoder
    batches = [make_batch([(ids, jax.random.key(0))], width, 0) for ids in encoded]
    common = dict(max_new_tokens=options.max_new_tokens, sampling=GREEDY, eos_id=tokenizer.eos_id)
    plain = SpeculativeDecoder(target.model, **common)
    policy = None
    if options.gamma == "auto":
        from spec_decode.bench.costs import auto_policy

        policy = auto_policy(
            target.model, target.params, draft, draft_params, batch=1, sampling=GREEDY
        )
    speculative = SpeculativeDecoder(target.model, draft, options.gamma, policy=policy, **common)
    params = DecoderParams(target.params, draft_params)
    decoders: dict[str, Callable[[Any], DecodeResult]] = {
        "autoregressive": lambda b: plain.run(params, b.tokens, b.lengths, b.keys),
        "speculative": lambda b: speculative.run(params, b.tokens, b.lengths, b.keys),
    }
    steps = len(decoders) * (1 + options.repeats * len(batches))
    bar = tqdm(total=steps, desc="demo", unit="run", disable=not progress, file=sys.stderr)
    results: dict[str, list[DecodeResult]] = {}
    seconds: dict[str, list[list[float]]] = {name: [] for name in decoders}
    for name, decode in decoders.items():
        bar.set_postfix_str(f"compiling {name}")
        jax.block_until_ready(decode(batches[0]))
        bar.update()
    for repeat in range(options.repeats):
        for name, decode in decoders.items():
            bar.set_postfix_str(f"{name}, repeat {repeat + 1}/{options.repeats}")
            times, outs = [], []
            for batch in batches:
                start = time.perf_counter()
                outs.append(jax.block_until_ready(decode(batch)))
                times.append(time.perf_counter() - start)
                bar.update()
            seconds[name].append(times)
            results[name] = outs
    bar.close()
    return _report(options, tokenizer, results, seconds)


def _report(options, tokenizer, results, seconds) -> dict[str, Any]:
    per_prompt = []
    ar_total = statistics.median(sum(times) for times in seconds["autoregressive"])
    sd_total = statistics.median(sum(times) for times in seconds["speculative"])
    for index, prompt in enumerate(options.prompts):
        ar, sd = results["autoregressive"][index], results["speculative"][index]
        ar_ids, sd_ids = _ids(ar), _ids(sd)
        summary = sd.summary()
        per_prompt.append(
            {
                "prompt": prompt,
                "text": tokenizer.decode(sd_ids, skip_special_tokens=True),
                "identical": ar_ids == sd_ids,
                "generated_tokens": summary["generated_tokens"],
                "target_calls": summary["target_calls"],
                "alpha": summary["alpha"],
                "autoregressive_seconds": _median_at(seconds["autoregressive"], index),
                "speculative_seconds": _median_at(seconds["speculative"], index),
            }
        )
    total = stats.summarize(results["speculative"])
    return {
        "identical": all(p["identical"] for p in per_prompt),
        "alpha": total["alpha"],
        "tokens_per_target_call": total["tokens_per_target_call"],
        "acceptance_histogram": total["acceptance_histogram"],
        "rounds_per_gamma": total["rounds_per_gamma"],
        "speedup": ar_total / sd_total,
        "autoregressive_seconds": ar_total,
        "speculative_seconds": sd_total,
        "target": options.target,
        "draft": options.draft,
        "gamma": options.gamma,
        "max_new_tokens": options.max_new_tokens,
        "repeats": options.repeats,
        "device": _device(),
        "prompts": per_prompt,
    }


def _ids(result: DecodeResult) -> list[int]:
    return np.asarray(result.tokens[0, : int(result.lengths[0])]).tolist()


def _median_at(times: Sequence[Sequence[float]], index: int) -> float:
    return statistics.median(repeat[index] for repeat in times)


def _device() -> str:
    device = jax.devices()[0]
    if device.platform == "cpu":
        return f"cpu ({os.cpu_count()} cores)"
    return f"{device.platform} ({device.device_kind})"


def format_report(report: dict[str, Any]) -> str:
    """The report as a few lines of text (what ``spec-decode demo`` prints without --json)."""
    lines = []
    for index, item in enumerate(report["prompts"], 1):
        mark = "identical" if item["identical"] else "DIFFERENT"
        lines += [f"[{index}] {item['prompt']}", f"    {item['text']!r}", f"    ({mark})"]
    ok = sum(item["identical"] for item in report["prompts"])
    lines += [
        "",
        f"target {report['target']}, draft {report['draft']}, gamma {report['gamma']}, "
        f"{report['max_new_tokens']} new tokens, greedy, {report['device']}",
        f"texts identical:        {'yes' if report['identical'] else 'NO'} "
        f"({ok}/{len(report['prompts'])} prompts)",
        f"alpha (acceptance):     {_number(report['alpha'])}",
        f"tokens per target call: {report['tokens_per_target_call']:.2f}",
        f"autoregressive:         {report['autoregressive_seconds']:.2f} s",
        f"speculative:            {report['speculative_seconds']:.2f} s",
        f"speedup:                {report['speedup']:.2f}x",
    ]
    if report["speedup"] < 1:
        lines.append(slowdown_reason(report))
    return "\n".join(lines)


def slowdown_reason(report: dict[str, Any]) -> str:
    """One line on why speculative was slower: tokens per round vs what a round costs.

    speedup = (tokens per target call) / (a round's time in autoregressive steps), exactly, as
    both decoders emit the same greedy tokens; a round is gamma draft calls plus one target call
    over gamma + 1 tokens, so if that call costs one step each draft call costs
    c = (round - 1) / gamma of a target step.
    """
    per_call, gamma = report["tokens_per_target_call"], report["gamma"]
    if gamma == "auto":
        return (
            f"why below 1:            gamma was chosen per round (rounds at gamma 0, 1, ...: "
            f"{report['rounds_per_gamma']}); a plain round in the auto loop also pays for "
            "choosing its gamma"
        )
    round_cost = per_call / report["speedup"]
    c = (round_cost - 1) / gamma
    c_text = f"c ~ {c:.2f} if verifying costs one step" if c > 0 else "the draft looks free"
    return (
        f"why below 1:            a round emits {per_call:.2f} tokens per target call "
        f"(alpha {_number(report['alpha'])}) but costs {round_cost:.2f} autoregressive steps "
        f"({gamma} draft calls + 1 verification; {c_text}): {per_call:.2f} / {round_cost:.2f} "
        f"= {report['speedup']:.2f}x (--gamma auto falls back to plain steps when drafting "
        "does not pay)"
    )


def _number(value: float | None) -> str:
    return "n/a (no draft examined)" if value is None else f"{value:.3f}"
