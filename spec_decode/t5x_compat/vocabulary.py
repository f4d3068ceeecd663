"""A SentencePiece vocabulary with seqio's interface, without seqio or TensorFlow.

``SentencePieceVocabulary(sentencepiece_model_file, extra_ids=0)`` has the names T5X code uses
from ``seqio.SentencePieceVocabulary``: ``encode``, ``decode``, ``eos_id``, ``pad_id``,
``unk_id``, ``vocab_size``. A seqio vocabulary can be used wherever this one is. The model file
is read on first use, so a gin config can name a vocabulary that a run never needs.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any


class SentencePieceVocabulary:
    """Token ids of a SentencePiece model, plus ``extra_ids`` sentinel ids after its pieces.

    T5's vocabulary (``cc_all.32000.100extra``) has pad 0, EOS 1, UNK 2; T5 1.1 checkpoints pad
    the 32100 ids to 32128 embedding rows, which never get decoded.
    """

    def __init__(self, sentencepiece_model_file: str | None = None, extra_ids: int = 0):
        if isinstance(extra_ids, bool) or not isinstance(extra_ids, int) or extra_ids < 0:
            raise ValueError(f"extra_ids={extra_ids!r} is not allowed: it must be an int >= 0")
        self.sentencepiece_model_file = sentencepiece_model_file
        self.extra_ids = extra_ids

    def __repr__(self) -> str:
        return f"SentencePieceVocabulary({self.sentencepiece_model_file!r})"

    @functools.cached_property
    def _processor(self) -> Any:
        import sentencepiece  # optional dependency: the 't5x' extra

        path = self.sentencepiece_model_file
        if path is None:
            raise ValueError(
                "sentencepiece_model_file=None is not allowed here: set the vocabulary's model "
                "file (gin: VOCABULARY_PATH)"
            )
        if not os.path.isfile(path):
            raise FileNotFoundError(f"sentencepiece_model_file={path!r} does not exist")
        return sentencepiece.SentencePieceProcessor(model_file=os.fspath(path))

    @property
    def vocab_size(self) -> int:
        return self._processor.get_piece_size() + self.extra_ids

    @property
    def eos_id(self) -> int:
        return self._processor.eos_id()

    @property
    def pad_id(self) -> int:
        return max(self._processor.pad_id(), 0)

    @property
    def unk_id(self) -> int:
        return self._processor.unk_id()

    def encode(self, text: str) -> list[int]:
        """Text -> ids (no EOS appended; seqio's task preprocessors add it)."""
        return list(self._processor.encode(text))

    def decode(self, ids: Sequence[int]) -> str:
        """Ids -> text, stopping at the first EOS; ids past the pieces (extra ids) are dropped."""
        pieces = self._processor.get_piece_size()
        kept = []
        for token in (int(t) for t in ids):
            if token == self.eos_id:
                break
            if 0 <= token < pieces and token != self.pad_id:
                kept.append(token)
        return self._processor.decode(kept)
