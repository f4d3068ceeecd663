"""Table 3's unigram and bigram drafts, counted from a task's training targets.

The paper built them from the target's own outputs; here they count the tokenized training
targets (EOS included), the text the target was fine-tuned to produce. Both drafts satisfy the
model contract, so they run through the same ``speculative_decode`` as the T5 drafts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from spec_decode.drafts.ngram import BigramDraft, UnigramDraft, ngram_params_from_tokens

NGRAM_DRAFTS = ("unigram", "bigram")


def target_sequences(examples: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """The target ids of tokenized examples, each preceded by T5's BOS (0) as the decoder sees
    it, so the bigram has a row for the first token."""
    return [np.concatenate([[0], targets]).astype(np.int64) for _, targets in examples]


def ngram_draft(kind: str, sequences: Sequence[np.ndarray], vocab_size: int):
    """(draft, params) of 'unigram' or 'bigram' counts over ``sequences`` (ids < vocab_size).

    The bigram table is dense, 4 V^2 bytes (V = 32128: 4.1 GB on the device).
    """
    if kind not in NGRAM_DRAFTS:
        raise ValueError(f"kind={kind!r} is not allowed: it must be one of {NGRAM_DRAFTS}")
    order = NGRAM_DRAFTS.index(kind) + 1
    params = ngram_params_from_tokens(sequences, vocab_size, order=order)
    draft = (UnigramDraft if order == 1 else BigramDraft)(vocab_size)
    return draft, params
