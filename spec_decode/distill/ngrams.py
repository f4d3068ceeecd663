"""The n-gram tables shipped beside the neural draft: one ``np.savez`` file per draft.

A directory (the shipped one is ``spec_decode/assets/smollm2_ngrams/``) holds

    unigram.npz   ``log_probs`` [V]                     (``ngram_params_from_tokens(order=1)``)
    bigram.npz    the four arrays of a top-m bigram     (``sparse_bigram_params_from_tokens``)

``scripts/distill_draft.py`` writes them with ``save_ngram_tables``; the registry reads them with
``load_ngram_table``. Both go through this file, so the writer and the reader cannot drift apart.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from spec_decode.drafts import ngram_params_from_tokens, sparse_bigram_params_from_tokens

ASSET_DIR = pathlib.Path(__file__).resolve().parents[1] / "assets" / "smollm2_ngrams"
TABLES = ("unigram", "bigram")


def count_ngram_tables(
    corpus: Sequence[Sequence[int]], vocab_size: int, top_m: int
) -> dict[str, dict[str, jax.Array]]:
    """Both tables counted on ``corpus`` (token-id sequences): {"unigram": ..., "bigram": ...}."""
    return {
        "unigram": ngram_params_from_tokens(corpus, vocab_size, order=1),
        "bigram": sparse_bigram_params_from_tokens(corpus, vocab_size, top_m),
    }


def save_ngram_tables(tables: dict[str, dict[str, Any]], directory: str | pathlib.Path) -> None:
    """Write each table of ``tables`` (keys from ``TABLES``) as ``directory/<name>.npz``."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, arrays in tables.items():
        if name not in TABLES:
            raise ValueError(f"table name {name!r} is not allowed: it must be one of {TABLES}")
        arrays = {key: np.asarray(value) for key, value in arrays.items()}
        np.savez_compressed(directory / f"{name}.npz", **arrays)


def load_ngram_table(
    directory: str | pathlib.Path, name: str, vocab_size: int
) -> dict[str, jax.Array]:
    """The draft params in ``directory/<name>.npz``, checked against the target's ``vocab_size``.

    Raises:
      FileNotFoundError: the file does not exist.
      ValueError: the table was counted over another vocabulary (another target's tokens).
    """
    path = pathlib.Path(directory) / f"{name}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"no {name} table at {path}: scripts/distill_draft.py writes one")
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    # Every array's first axis is the vocabulary ([V] or [V, m]): a table counted on another
    # target's tokens would index past its logits or silently draft the wrong tokens.
    sizes = {key: array.shape[0] for key, array in arrays.items()}
    if any(size != vocab_size for size in sizes.values()):
        raise ValueError(
            f"the {name} table at {path} covers {sizes} tokens, but the target's vocabulary has "
            f"{vocab_size}: it was counted for another target"
        )
    return {key: jnp.asarray(array) for key, array in arrays.items()}
