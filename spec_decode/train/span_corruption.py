"""T5's span-corruption pre-training objective, as T5X-style batches from plain documents.

    documents = pretraining_documents("/data/corpus")           # train splits only
    stream = span_corruption_batches(documents, vocabulary, batch_size=128, input_length=512)
    trainer.fit(state, stream)                                 # T5Trainer's batch dict

A chunk of raw tokens loses 15% of them (``noise_density``) in spans of mean length 3
(``mean_noise_span_length``); each dropped span becomes one sentinel in the inputs, and the
targets list every sentinel followed by the tokens it hides. The sentinels are the
vocabulary's extra ids counted down from the top (``<extra_id_0>`` = ``vocab.extra_id(0)``
first, then ``<extra_id_1>``..), and both sides end with EOS (1). A worked example, 10 raw
tokens with 2 noise spans (noise marked ^):

    raw        a  b  c  d  e  f  g  h  i  j
    noise            ^  ^           ^
    inputs     a  b  <0>  e  f  g  <1>  i  j  EOS
    targets    <0>  c  d  <1>  h  EOS

Spans alternate non-noise, noise, non-noise.. starting with non-noise; the noise and the
non-noise tokens are each split into ``num_spans`` non-empty runs uniformly at random.

Chunk length (T5's ``random_spans_helper`` arithmetic): a chunk of n raw tokens has
``noise = round(n * noise_density)`` noise tokens in ``spans = round(noise /
mean_noise_span_length)`` spans, so its inputs are ``n - noise + spans + 1`` tokens and its
targets ``noise + spans + 1``. ``span_corruption_lengths`` takes the largest n whose inputs fit
``input_length``: for 512 that is n = 568 (85 noise tokens in 28 spans: inputs 483 + 28 + 1 =
512, targets 85 + 28 + 1 = 114).

Documents are tokenized without EOS and concatenated, epoch after epoch, each epoch in a new
order drawn from (``seed``, epoch), then cut into chunks of n tokens; an epoch's last, shorter
chunk is corrupted the same way (its inputs and targets are shorter, which packing fills).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from spec_decode.train.data import Example, _fits, make_batch
from spec_decode.train.vocab import extra_id


def span_corruption_lengths(
    input_length: int, noise_density: float = 0.15, mean_noise_span_length: float = 3.0
) -> tuple[int, int]:
    """(raw tokens per chunk, target length T) for inputs of exactly ``input_length`` tokens."""
    if isinstance(input_length, bool) or not isinstance(input_length, int) or input_length < 3:
        raise ValueError(f"input_length={input_length!r} is not allowed: it must be an int >= 3")
    _check_noise(noise_density, mean_noise_span_length)
    n = input_length - 1
    while _lengths(n + 1, noise_density, mean_noise_span_length)[0] <= input_length:
        n += 1
    return n, _lengths(n, noise_density, mean_noise_span_length)[1]


def _num_noise(n: int, noise_density: float, mean_noise_span_length: float) -> tuple[int, int]:
    """(noise tokens, noise spans) of a chunk of n >= 2 tokens: each side keeps >= 1 token."""
    noise = min(max(int(round(n * noise_density)), 1), n - 1)
    spans = max(int(round(noise / mean_noise_span_length)), 1)
    return noise, min(spans, noise, n - noise)


def _lengths(n: int, noise_density: float, mean_noise_span_length: float) -> tuple[int, int]:
    noise, spans = _num_noise(n, noise_density, mean_noise_span_length)
    return n - noise + spans + 1, noise + spans + 1


def noise_mask(
    n: int, rng: np.random.Generator, noise_density: float = 0.15, mean_span: float = 3.0
) -> np.ndarray:
    """[n] bool, True at noise tokens: alternating non-noise / noise runs, non-noise first."""
    if n < 2:
        raise ValueError(f"n={n!r} is not allowed: a chunk needs >= 2 tokens to corrupt")
    noise, spans = _num_noise(n, noise_density, mean_span)
    noise_runs = _random_composition(noise, spans, rng)
    keep_runs = _random_composition(n - noise, spans, rng)
    runs = np.stack([keep_runs, noise_runs], axis=1).reshape(-1)  # keep, noise, keep, ..
    return np.repeat(np.tile([False, True], spans), runs)


def _random_composition(total: int, parts: int, rng: np.random.Generator) -> np.ndarray:
    """``parts`` positive ints summing to ``total``, uniform over all such compositions."""
    cuts = np.sort(rng.choice(total - 1, parts - 1, replace=False) + 1)
    return np.diff(np.concatenate([[0], cuts, [total]]))


def corrupt(tokens: np.ndarray, mask: np.ndarray, vocabulary) -> Example:
    """(inputs, targets), each ending with EOS: each noise run of ``mask`` -> one sentinel."""
    tokens = np.asarray(tokens, np.int32)
    starts = mask & ~np.concatenate([[False], mask[:-1]])  # first token of each noise run
    if starts.sum() > vocabulary.extra_ids:
        raise ValueError(
            f"{int(starts.sum())} noise spans need more sentinels than the vocabulary's "
            f"extra_ids={vocabulary.extra_ids}: use a shorter input_length or more extra ids"
        )
    sentinels = extra_id(0, vocabulary) - np.arange(int(starts.sum()), dtype=np.int32)
    span = np.cumsum(starts) - 1  # [n] index of the noise run each token is in (or after)
    inputs = np.where(starts, sentinels[span], tokens)[~mask | starts]
    # Targets: the noise tokens in order, each run's sentinel inserted before its first token.
    noise = np.flatnonzero(mask)
    targets = np.insert(tokens[noise], np.flatnonzero(starts[noise]), sentinels)
    eos = np.array([vocabulary.eos_id], np.int32)
    return np.concatenate([inputs, eos]), np.concatenate([targets, eos]).astype(np.int32)


def uncorrupt(inputs: Sequence[int], targets: Sequence[int], vocabulary) -> list[int]:
    """The raw tokens back: each sentinel of ``inputs`` expanded with its run from ``targets``."""
    lowest = vocabulary.vocab_size - vocabulary.extra_ids
    runs: dict[int, list[int]] = {}
    current = None
    for t in targets:
        if t == vocabulary.eos_id:
            break
        if t >= lowest:
            current = runs.setdefault(int(t), [])
        elif current is not None:
            current.append(int(t))
    out: list[int] = []
    for t in inputs:
        if t == vocabulary.eos_id:
            break
        out.extend(runs[int(t)] if t >= lowest else [int(t)])
    return out


def span_corruption_examples(
    documents: Sequence[str],
    vocabulary,
    *,
    input_length: int,
    seed: int = 0,
    noise_density: float = 0.15,
    mean_noise_span_length: float = 3.0,
) -> Iterator[Example]:
    """Corrupted (inputs, targets) chunks of the documents, forever (see the module docstring)."""
    if not documents:
        raise ValueError("documents is empty: there is nothing to pre-train on")
    n, _ = span_corruption_lengths(input_length, noise_density, mean_noise_span_length)
    spans = _num_noise(n, noise_density, mean_noise_span_length)[1]
    if spans > vocabulary.extra_ids:
        raise ValueError(
            f"input_length={input_length} is not allowed with extra_ids={vocabulary.extra_ids}: "
            f"its chunks have {spans} noise spans, one sentinel each"
        )
    epoch = 0
    while True:
        rng = np.random.default_rng((seed, epoch))
        buffer: list[int] = []
        total = 0
        for index in rng.permutation(len(documents)):
            buffer.extend(vocabulary.encode(documents[index]))
            while len(buffer) >= n:
                chunk, buffer = buffer[:n], buffer[n:]
                total += 1
                yield corrupt(chunk, noise_mask(n, rng, noise_density, mean_noise_span_length),
                              vocabulary)  # fmt: skip
        if len(buffer) >= 2:
            total += 1
            mask = noise_mask(len(buffer), rng, noise_density, mean_noise_span_length)
            yield corrupt(buffer, mask, vocabulary)
        if not total:
            raise ValueError("documents tokenize to fewer than 2 tokens: nothing to corrupt")
        epoch += 1


def span_corruption_batches(
    documents: Sequence[str],
    vocabulary,
    *,
    batch_size: int,
    input_length: int,
    seed: int = 0,
    noise_density: float = 0.15,
    mean_noise_span_length: float = 3.0,
    pack: bool = True,
) -> Iterator[dict]:
    """T5X-style batches (``data.py``'s dict: inputs [B, input_length], targets [B, T]), forever.

    T is ``span_corruption_lengths(input_length, ..)[1]``. With ``pack`` a row takes further
    examples (in stream order) while both sides fit, as ``data.batches`` packs.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} is not allowed: it must be an int >= 1")
    S = input_length
    _, T = span_corruption_lengths(input_length, noise_density, mean_noise_span_length)
    examples = span_corruption_examples(
        documents, vocabulary, input_length=input_length, seed=seed,
        noise_density=noise_density, mean_noise_span_length=mean_noise_span_length,
    )  # fmt: skip
    rows: list[list[Example]] = []
    for example in examples:
        if pack and rows and _fits(rows[-1], example, S, T):
            rows[-1].append(example)
            continue
        if len(rows) == batch_size:
            yield make_batch(rows, batch_size, S, T, pack)
            rows = []
        rows.append([example])


def pretraining_documents(corpus_dir: str | Path) -> list[str]:
    """Every training-split text of a corpus: English descriptions, German and French sides.

    ``text_en.train.txt`` (English descriptions), the ``de`` side of
    ``translation_en_de.train.jsonl`` and the ``fr`` side of ``translation_en_fr.train.jsonl``
    (their English sides repeat text_en), and the docstrings of ``docstrings.train.jsonl``;
    exact repeats are dropped, the first kept. Validation and test files are never read.
    """
    from spec_decode.data.corpus import read_text_documents

    directory = Path(corpus_dir)
    path = directory / "text_en.train.txt"
    if not path.is_file():
        raise ValueError(
            f"corpus_dir={str(corpus_dir)!r} is not allowed: it has no text_en.train.txt "
            "(build it with scripts/build_corpus.py)"
        )
    documents = read_text_documents(path)
    for name, field in (
        ("translation_en_de", "de"),
        ("translation_en_fr", "fr"),
        ("docstrings", "docstring"),
    ):
        path = directory / f"{name}.train.jsonl"
        if path.is_file():
            with open(path, encoding="utf-8") as f:
                documents.extend(json.loads(line)[field] for line in f if line.strip())
    return list(dict.fromkeys(d for d in documents if d.strip()))


def _check_noise(noise_density: float, mean_noise_span_length: float) -> None:
    if not 0 < noise_density < 1:
        raise ValueError(f"noise_density={noise_density!r} is not allowed: it must be in (0, 1)")
    if not mean_noise_span_length >= 1:
        raise ValueError(
            f"mean_noise_span_length={mean_noise_span_length!r} is not allowed: it must be >= 1"
        )
