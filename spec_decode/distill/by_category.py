"""Held-out acceptance by request category, from the decoder's own per-row counts.

The held-out split of ``scripts/build_draft_data.py``'s shards (categories and phrasings the
training split never holds) is decoded speculatively in fixed-size batches, one padded width
(one compiled decoder); each row's accepted and examined drafts (``core.stats.row_counts``) are
summed per category, and alpha is ``core.stats.alpha`` of the sums:

    category      prompts  accepted  examined   alpha
    arithmetic          4        61        80    0.76
    packages            4        40        72    0.56
    all                 8       101       152    0.66     (the totals, not a mean of alphas)
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from spec_decode.core import stats
from spec_decode.core.functional import speculative_decode
from spec_decode.core.sampling import SamplingConfig
from spec_decode.distill import draft_data


@dataclasses.dataclass(frozen=True)
class Prompts:
    """Prompt ids (one list per request) and each one's category."""

    ids: list[list[int]]
    categories: list[str]


def held_out_prompts(out, per_category: int | None = None) -> Prompts:
    """Each held-out request of a shard directory once (its two temperatures' examples share
    the prompt), at most ``per_category`` per category, in shard order."""
    seen, ids, categories, counts = set(), [], [], {}
    for example in draft_data.read_examples(out, "held_out"):
        category = example["category"]
        if example["index"] in seen or counts.get(category, 0) == per_category:
            continue
        seen.add(example["index"])
        counts[category] = counts.get(category, 0) + 1
        ids.append(example["prompt_ids"])
        categories.append(category)
    if not ids:
        raise ValueError(f"out={str(out)!r} holds no held-out examples: nothing to evaluate on")
    return Prompts(ids, categories)


def chat_prompts(tokenizer, texts, category: str = "demo") -> Prompts:
    """Texts as single-turn chat prompts (say, the CLI demo's), all of one category."""
    return Prompts([tokenizer.chat([{"role": "user", "content": t}]) for t in texts],
                   [category] * len(texts))  # fmt: skip


def alpha_by_category(
    target, target_params, draft, draft_params, prompts: Prompts, *, temperature: float,
    gamma: int = 4, new_tokens: int = 128, eos_id=None, pad_id: int = 0, batch: int = 64,
    seed: int = 0, width: int | None = None,
) -> dict:  # fmt: skip
    """{"all": counts, "by_category": {category: counts}}; counts = prompts, generated_tokens,
    accepted, examined, alpha (None when nothing was examined). Prompts are right-padded to
    ``width`` (default: the longest), so calls of one width share a compiled decoder."""
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch={batch!r} is not allowed: a positive int")
    n = len(prompts.ids)
    longest = max(len(x) for x in prompts.ids)
    width = longest if width is None else width
    if longest > width:
        raise ValueError(f"width={width} is not allowed: a prompt has {longest} tokens")
    tokens = np.full((n, width), pad_id, np.int32)
    for i, x in enumerate(prompts.ids):
        tokens[i, : len(x)] = x
    lengths = np.array([len(x) for x in prompts.ids], np.int32)
    keys = jax.random.split(jax.random.key(seed), n)
    size = batch  # every call has batch rows (one compiled shape), padded with the last one
    names = ("generated_tokens", "accepted_tokens", "examined_drafts")
    per_row = {name: np.zeros(n, np.int64) for name in names}
    for start in range(0, n, size):
        wanted = np.arange(start, start + size)
        rows = wanted.clip(max=n - 1)  # the last batch is padded with its last row: one shape
        out = speculative_decode(
            target, target_params, draft, draft_params, jnp.asarray(tokens[rows]),
            jnp.asarray(lengths[rows]), keys[rows], gamma=gamma, max_new_tokens=new_tokens,
            sampling=SamplingConfig(temperature=temperature), eos_id=eos_id, pad_id=pad_id,
        )  # fmt: skip
        counts = jax.device_get(stats.row_counts(out)._asdict())
        real = wanted < n  # the padding rows are not counted
        for name in names:
            per_row[name][rows[real]] = np.asarray(counts[name])[real]
    categories = np.asarray(prompts.categories)
    return {
        "all": _counts(per_row, np.ones(n, bool)),
        "by_category": {c: _counts(per_row, categories == c) for c in _ordered(prompts)},
        "temperature": temperature, "gamma": gamma, "new_tokens": new_tokens,
    }  # fmt: skip


def _ordered(prompts: Prompts) -> list[str]:
    return list(dict.fromkeys(prompts.categories))


def _counts(per_row: dict, mask: np.ndarray) -> dict:
    accepted = int(per_row["accepted_tokens"][mask].sum())
    examined = int(per_row["examined_drafts"][mask].sum())
    generated = int(per_row["generated_tokens"][mask].sum())
    return {
        "prompts": int(mask.sum()), "generated_tokens": generated,
        "accepted": accepted, "examined": examined, "alpha": stats.alpha(accepted, examined),
    }  # fmt: skip


def draft_report(
    target, target_params, draft, draft_params, held_out: Prompts, demo: Prompts, *,
    gamma: int = 4, new_tokens: int = 128, eos_id=None, pad_id: int = 0, batch: int = 64,
    temperatures: tuple[float, ...] = (0.0, 1.0),
) -> dict:  # fmt: skip
    """alpha at T = 0 and T = 1 (``temperatures``) on the held-out split (by category) and on
    the demo prompts:
    {"held_out T=0": ..., "held_out T=1": ..., "demo T=0": ..., "demo T=1": ...}, each an
    ``alpha_by_category`` result. Both prompt sets share one width and batch: one compiled
    decoder per temperature serves both sets."""
    width = max(len(x) for x in held_out.ids + demo.ids)
    batch = min(batch, max(len(held_out.ids), len(demo.ids)))
    common = dict(gamma=gamma, new_tokens=new_tokens, eos_id=eos_id, pad_id=pad_id, batch=batch,
                  width=width)  # fmt: skip
    report = {}
    for name, prompts in (("held_out", held_out), ("demo", demo)):
        for temperature in temperatures:
            report[f"{name} T={temperature:g}"] = alpha_by_category(
                target, target_params, draft, draft_params, prompts, temperature=temperature,
                **common,
            )  # fmt: skip
    return report


def headline(report: dict) -> dict:
    """{"held_out T=0": alpha, ...}: the overall alphas of a ``draft_report``, for one line."""
    return {name: row["all"]["alpha"] for name, row in report.items()}
