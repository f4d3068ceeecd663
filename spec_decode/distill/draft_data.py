"""Distillation data on disk: target responses in resumable shards, and reading them back.

``OUT`` after ``write_shards`` (``scripts/build_draft_data.py``):

    shard-00000.jsonl   one example per line: the request (text, category, phrasing, group,
                        key, split, answer), index, temperature, prompt_ids, response_ids,
                        response (text), finished (EOS emitted)
    ...
    manifest.json       config, requests per category and split, per shard its key, examples
                        and target tokens; the totals

A shard's key hashes the generation config and its requests' texts. A rerun skips every shard
whose file exists and whose key the manifest holds, so a crashed or stopped run resumes where
it was, and a changed config or request list regenerates only what changed. Files are written
to a temporary name and renamed, and the manifest after each shard. ``stop(manifest)``, asked
after each shard, ends a run early (a token target met, a time budget spent): the manifest then
lists the shards so far, ``"complete": false``, and the next run goes on from there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from spec_decode.distill.mix import TrainingSet
from spec_decode.distill.requests import Request

MANIFEST = "manifest.json"
VERSION = 1
Generate = Callable[[Sequence[Request], int], tuple[list[dict], int]]


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.jsonl"


def shard_key(requests: Sequence[Request], config: dict) -> str:
    h = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for r in requests:
        h.update(b"\x00" + r.text.encode())
    return h.hexdigest()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def read_manifest(out: str | Path) -> dict | None:
    path = Path(out) / MANIFEST
    return json.loads(path.read_text()) if path.exists() else None


def write_shards(
    out: str | Path,
    requests: Sequence[Request],
    generate: Generate,
    config: dict,
    shard_size: int,
    counts: dict | None = None,
    progress: bool = True,
    stop: Callable[[dict], bool] | None = None,
) -> dict:
    """Generate every missing shard of ``requests`` into ``out`` (or those before ``stop``
    says so); return the manifest.

    ``generate(requests, first_index)`` -> (examples, prompts left out); ``config`` is what
    decides a response (it enters every shard's key); ``counts`` is recorded as it is.
    """
    from tqdm import tqdm

    if not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"shard_size={shard_size!r} is not allowed: a positive int")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    old = (read_manifest(out) or {}).get("shards", {})
    shards: dict[str, dict] = {}
    starts = range(0, len(requests), shard_size)
    bar = tqdm(total=len(starts), desc="shards", unit="shard", disable=not progress)
    generated, stopped = 0, False
    for number, start in enumerate(starts):
        part = requests[start : start + shard_size]
        name, key = shard_name(number), shard_key(part, config)
        if old.get(name, {}).get("key") == key and (out / name).exists():
            shards[name] = old[name]
        else:
            examples, left_out = generate(part, start)
            lines = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples)
            _write_atomic(out / name, lines)
            shards[name] = {
                "key": key, "requests": len(part), "left_out": left_out,
                "examples": len(examples),
                "target_tokens": sum(len(e["response_ids"]) for e in examples),
                "by_split": _tokens_by_split(examples),
            }  # fmt: skip
            generated += 1
        manifest = _manifest(config, counts, shards, generated, number + 1 == len(starts))
        _write_atomic(out / MANIFEST, json.dumps(manifest, indent=1) + "\n")
        bar.update(1)
        bar.set_postfix(target_tokens=manifest["target_tokens"])
        if stop is not None and number + 1 < len(starts) and stop(manifest):
            stopped = True
            break
    bar.close()
    if not stopped:
        for stale in set(old) - set(shards):  # shards of a longer, earlier request list
            (out / stale).unlink(missing_ok=True)
    manifest = _manifest(config, counts, shards, generated, not stopped)
    _write_atomic(out / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return manifest


def _tokens_by_split(examples: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in examples:
        out[e["split"]] = out.get(e["split"], 0) + len(e["response_ids"])
    return out


def _manifest(config, counts, shards, generated, complete) -> dict:
    by_split: dict[str, int] = {}
    for s in shards.values():
        for split, n in s["by_split"].items():
            by_split[split] = by_split.get(split, 0) + n
    return {
        "version": VERSION, "config": config, "requests": counts, "shards": shards,
        "examples": sum(s["examples"] for s in shards.values()),
        "left_out": sum(s["left_out"] for s in shards.values()),
        "target_tokens": sum(s["target_tokens"] for s in shards.values()),
        "target_tokens_by_split": by_split,
        "shards_generated_last_run": generated, "complete": complete,
    }  # fmt: skip


def read_examples(out: str | Path, split: str | None = "train") -> Iterator[dict]:
    """The examples of every shard the manifest lists (of ``split``; None: all), in order."""
    manifest = read_manifest(out)
    if manifest is None:
        raise ValueError(
            f"out={str(out)!r} has no {MANIFEST}: build it with `python scripts/"
            "build_draft_data.py --out DIR` (or --smoke)"
        )
    for name in sorted(manifest["shards"]):
        with open(Path(out) / name, encoding="utf-8") as f:
            for line in f:
                example = json.loads(line)
                if split is None or example["split"] == split:
                    yield example


@dataclasses.dataclass(frozen=True)
class ShardData:
    """The training rows of a shard directory, ready for ``distill.train``."""

    training_set: TrainingSet
    categories: list[str]  # per row


def training_set(out: str | Path, width: int | None = None) -> ShardData:
    """Prompt + response per training example, right-padded to ``width`` (default: the
    longest; a longer row is an error, never cut). Held-out examples are never read."""
    rows = [
        (e["prompt_ids"] + e["response_ids"], e["category"]) for e in read_examples(out, "train")
    ]
    if not rows:
        raise ValueError(f"out={str(out)!r} holds no training examples")
    longest = max(len(ids) for ids, _ in rows)
    width = longest if width is None else width
    if longest > width:
        raise ValueError(f"width={width} is not allowed: an example has {longest} tokens")
    sequences = np.zeros((len(rows), width), np.int32)
    for i, (ids, _) in enumerate(rows):
        sequences[i, : len(ids)] = ids
    lengths = np.array([len(ids) for ids, _ in rows], np.int32)
    categories = [c for _, c in rows]
    counts: dict[str, int] = {}
    for c in categories:
        counts[c] = counts.get(c, 0) + 1
    return ShardData(TrainingSet(sequences, lengths, counts), categories)
