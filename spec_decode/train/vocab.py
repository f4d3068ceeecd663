"""A SentencePiece unigram vocabulary with T5's ids, trained on this project's own text.

    path = train_vocabulary(texts, "/tmp/vocab/spm", vocab_size=32000, extra_ids=100)
    vocabulary = load_vocabulary(path, extra_ids=100)     # t5x_compat.SentencePieceVocabulary

The ids are T5's: pad 0, EOS 1, UNK 2, no BOS. Like T5's ``cc_all.32000.100extra``, the
sentinels ``<extra_id_0>``.. are not pieces of the SentencePiece model: they are the
``extra_ids`` ids above its ``vocab_size`` pieces, counted down from the top, so
``<extra_id_0>`` is ``vocab_size + extra_ids - 1`` (``extra_id``). A model's embedding may have
more rows than that (T5 1.1 pads 32100 to 32128); the extra rows are never targets.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from spec_decode.t5x_compat.vocabulary import SentencePieceVocabulary

PAD_ID, EOS_ID, UNK_ID = 0, 1, 2
# SentencePiece's own ids plus 256 byte pieces must fit below the learned ones.
_BYTE_PIECES = 256


def train_vocabulary(
    texts: Iterable[str],
    model_prefix: str | Path,
    vocab_size: int,
    *,
    byte_fallback: bool = True,
    character_coverage: float = 0.9995,
    input_sentence_size: int = 2_000_000,
    seed: int = 0,
) -> str:
    """Train a unigram model on ``texts`` (one sentence each); returns '<model_prefix>.model'.

    ``vocab_size`` counts the model's pieces (pad, EOS, UNK and, with ``byte_fallback``, the
    256 byte pieces that spell any character the pieces miss); on a text too small to fill it
    the model has fewer (``get_piece_size()``), never more. At most
    ``input_sentence_size`` sentences are sampled (shuffled by ``seed``) from longer inputs.
    """
    import sentencepiece  # the 't5x' extra

    least = 3 + (_BYTE_PIECES if byte_fallback else 0) + 1
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < least:
        raise ValueError(
            f"vocab_size={vocab_size!r} is not allowed: it must be an int >= {least} "
            f"(3 special ids{' + 256 byte pieces' if byte_fallback else ''} + 1)"
        )
    if not 0 < character_coverage <= 1:
        raise ValueError(
            f"character_coverage={character_coverage!r} is not allowed: it must be in (0, 1]"
        )
    prefix = Path(model_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    sentences = (t for t in texts if t and t.strip())
    sentencepiece.set_random_generator_seed(seed)  # the sampling of input_sentence_size
    try:
        _train(sentencepiece, sentences, prefix, vocab_size, byte_fallback, character_coverage,
               input_sentence_size)  # fmt: skip
    except RuntimeError as error:
        if "required_chars" not in str(error):
            raise
        raise ValueError(
            f"vocab_size={vocab_size} is not allowed for this text: its characters (at "
            f"character_coverage={character_coverage}) need more pieces: {error}"
        ) from error
    return str(prefix.with_suffix(".model"))


def _train(sentencepiece, sentences, prefix, vocab_size, byte_fallback, coverage, size) -> None:
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=sentences,
        model_prefix=str(prefix),
        vocab_size=vocab_size,
        model_type="unigram",
        pad_id=PAD_ID,
        eos_id=EOS_ID,
        unk_id=UNK_ID,
        bos_id=-1,
        byte_fallback=byte_fallback,
        character_coverage=coverage,
        input_sentence_size=size,
        shuffle_input_sentence=True,
        hard_vocab_limit=False,
        minloglevel=2,
    )


def load_vocabulary(path: str | Path, extra_ids: int = 0) -> SentencePieceVocabulary:
    """The trained model as the project's seqio-like vocabulary (pieces + ``extra_ids``)."""
    return SentencePieceVocabulary(str(path), extra_ids=extra_ids)


def extra_id(index: int, vocabulary: SentencePieceVocabulary) -> int:
    """The id of ``<extra_id_{index}>``: T5's sentinels count down from the top id."""
    if (
        isinstance(index, bool)
        or not isinstance(index, int)
        or not 0 <= index < vocabulary.extra_ids
    ):
        raise ValueError(
            f"index={index!r} is not allowed: it must be an int in [0, {vocabulary.extra_ids})"
        )
    return vocabulary.vocab_size - 1 - index
