"""Corpus JSONL -> T5X-style batches: encoder inputs [B, S], decoder targets [B, T].

Each example becomes ``prefix + inputs`` and ``targets``, tokenized, cut to S - 1 and T - 1
tokens and ended with EOS (1), as seqio's ``append_eos_after_trim`` does. A batch is T5X's
feature dict:

    encoder_input_tokens    [B, S] int32, 0 = padding
    decoder_target_tokens   [B, T] int32
    decoder_input_tokens    [B, T] the targets shifted right, 0 at each sequence's start
    decoder_loss_weights    [B, T] float32, 1 where the target is real
    encoder_segment_ids, decoder_segment_ids, encoder_positions, decoder_positions
                            [B, S] / [B, T], only when packing (segments 1, 2, ..; 0 = padding)

A worked example (T = 6, packed, targets "a b EOS" and "c EOS"):

    decoder_target_tokens   a  b  1  c  1  0
    decoder_segment_ids     1  1  1  2  2  0
    decoder_input_tokens    0  a  b  0  c  0
    decoder_loss_weights    1  1  1  1  1  0
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from spec_decode.data.splits import SPLITS

Example = tuple[np.ndarray, np.ndarray]  # (input ids, target ids), each ending with EOS


@dataclasses.dataclass(frozen=True)
class Task:
    """Which JSONL fields are the inputs and targets, and T5's text prefix for the inputs."""

    inputs: str
    targets: str
    prefix: str = ""


# The corpus' files (spec_decode/data/corpus.py) and T5's task prefixes.
TASKS = {
    "translation_en_de": Task("en", "de", "translate English to German: "),
    "translation_en_fr": Task("en", "fr", "translate English to French: "),
    "summarization": Task("document", "summary", "summarize: "),
}


def corpus_file(directory: str | Path, task: str, split: str) -> Path:
    """``<directory>/<task>.<split>.jsonl``, as ``build_corpus`` writes it."""
    if task not in TASKS:
        raise ValueError(f"task={task!r} is not allowed: it must be one of {sorted(TASKS)}")
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not allowed: it must be one of {SPLITS}")
    return Path(directory) / f"{task}.{split}.jsonl"


def read_pairs(path: str | Path, task: str) -> list[tuple[str, str]]:
    """(prefixed inputs, targets) text of every record of a corpus JSONL file."""
    if task not in TASKS:
        raise ValueError(f"task={task!r} is not allowed: it must be one of {sorted(TASKS)}")
    spec = TASKS[task]
    pairs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                pairs.append((spec.prefix + row[spec.inputs], row[spec.targets]))
    return pairs


def tokenize(
    pairs: Sequence[tuple[str, str]], vocabulary, max_input_length: int, max_target_length: int
) -> list[Example]:
    """Encode each pair, cut to the lengths minus one and append EOS."""
    _check_length("max_input_length", max_input_length)
    _check_length("max_target_length", max_target_length)
    eos = vocabulary.eos_id

    def ids(text: str, length: int) -> np.ndarray:
        return np.array([*vocabulary.encode(text)[: length - 1], eos], np.int32)

    return [(ids(x, max_input_length), ids(y, max_target_length)) for x, y in pairs]


def shift_right(targets: np.ndarray, segment_ids: np.ndarray | None = None) -> np.ndarray:
    """[B, T] -> [B, T]: each token moves one right; 0 enters at the start of every segment."""
    shifted = np.zeros_like(targets)
    shifted[:, 1:] = targets[:, :-1]
    if segment_ids is not None:
        starts = np.ones_like(segment_ids, bool)
        starts[:, 1:] = segment_ids[:, 1:] != segment_ids[:, :-1]
        shifted[starts] = 0
    return shifted


def make_batch(rows: Sequence[Sequence[Example]], batch_size: int, S: int, T: int, pack: bool):
    """``batch_size`` rows of examples (one each unless packing; missing rows are padding)."""
    if len(rows) > batch_size:
        raise ValueError(f"{len(rows)} rows do not fit batch_size={batch_size}")
    names = ("encoder_input_tokens", "decoder_target_tokens")
    tokens = {n: np.zeros((batch_size, w), np.int32) for n, w in zip(names, (S, T), strict=True)}
    segments = {n: np.zeros((batch_size, w), np.int32) for n, w in zip(names, (S, T), strict=True)}
    positions = {n: np.zeros((batch_size, w), np.int32) for n, w in zip(names, (S, T), strict=True)}
    for b, examples in enumerate(rows):
        for name, part in zip(names, (0, 1), strict=True):
            start = 0
            for segment, example in enumerate(examples, start=1):
                ids = example[part]
                end = start + len(ids)
                tokens[name][b, start:end] = ids
                segments[name][b, start:end] = segment
                positions[name][b, start:end] = np.arange(len(ids))
                start = end
    targets = tokens["decoder_target_tokens"]
    batch = {
        "encoder_input_tokens": tokens["encoder_input_tokens"],
        "decoder_target_tokens": targets,
        "decoder_input_tokens": shift_right(
            targets, segments["decoder_target_tokens"] if pack else None
        ),
        "decoder_loss_weights": (targets > 0).astype(np.float32),
    }
    if pack:
        batch["encoder_segment_ids"] = segments["encoder_input_tokens"]
        batch["decoder_segment_ids"] = segments["decoder_target_tokens"]
        batch["encoder_positions"] = positions["encoder_input_tokens"]
        batch["decoder_positions"] = positions["decoder_target_tokens"]
    return batch


def batches(
    examples: Sequence[Example],
    batch_size: int,
    max_input_length: int,
    max_target_length: int,
    *,
    seed: int | None = 0,
    pack: bool = False,
    repeat: bool = True,
) -> Iterator[dict]:
    """Batches of ``examples``; a new permutation by (``seed``, epoch) every epoch.

    ``repeat=True`` (training) loops over epochs forever and drops each epoch's incomplete last
    batch; ``repeat=False`` (evaluation) is one pass that pads the last batch with empty rows
    (weight 0). ``seed=None`` keeps the file order. Packing fills each row greedily, in order,
    with as many examples as fit both lengths.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} is not allowed: it must be an int >= 1")
    _check_length("max_input_length", max_input_length)
    _check_length("max_target_length", max_target_length)
    if not examples:
        raise ValueError("examples is empty: there is nothing to batch")
    S, T = max_input_length, max_target_length
    for x, y in examples:
        if len(x) > S or len(y) > T:
            raise ValueError(
                f"an example has {len(x)} input / {len(y)} target tokens, more than "
                f"max_input_length={S} / max_target_length={T}: tokenize with those lengths"
            )
    epoch = 0
    while True:
        order = np.arange(len(examples))
        if seed is not None:
            order = np.random.default_rng((seed, epoch)).permutation(len(examples))
        rows: list[list[Example]] = []
        yielded = 0
        for index in order:
            example = examples[index]
            row = rows[-1] if rows and pack else None
            if row is not None and _fits(row, example, S, T):
                row.append(example)
                continue
            if len(rows) == batch_size:
                yield make_batch(rows, batch_size, S, T, pack)
                yielded += 1
                rows = []
            rows.append([example])
        if not repeat:
            if rows:
                yield make_batch(rows, batch_size, S, T, pack)
            return
        if len(rows) == batch_size:
            yield make_batch(rows, batch_size, S, T, pack)
        elif not yielded:
            raise ValueError(
                f"batch_size={batch_size} is not allowed: an epoch of {len(examples)} examples "
                "fills no whole batch"
            )
        epoch += 1


def _fits(row: list[Example], example: Example, S: int, T: int) -> bool:
    used_s = sum(len(x) for x, _ in row)
    used_t = sum(len(y) for _, y in row)
    return used_s + len(example[0]) <= S and used_t + len(example[1]) <= T


def _check_length(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise ValueError(f"{name}={value!r} is not allowed: it must be an int >= 2 (room for EOS)")
