"""T5X's interfaces, decoded speculatively: works with t5x installed or without it.

- ``speculative_sample``: T5X's ``DecodeFnCallable`` (``temperature_sample``'s keywords and
  returns); target and draft enter by keyword as (model, params) pairs.
- ``SpeculativeEncoderDecoderModel``: T5X's ``EncoderDecoderModel`` (``predict_batch_with_aux``,
  ``score_batch``, ``get_initial_variables``) with a draft; params {'target': ..., 'draft': ...}.
- ``draft_restore_fn``: builds that tree while a T5X run restores the target checkpoint.
- ``SentencePieceVocabulary``: seqio's vocabulary interface without seqio.
"""

from spec_decode.t5x_compat.base import T5X_AVAILABLE, DecoderParams
from spec_decode.t5x_compat.decode_fn import speculative_sample, t5x_sampling
from spec_decode.t5x_compat.model import SpeculativeEncoderDecoderModel
from spec_decode.t5x_compat.restore import draft_restore_fn
from spec_decode.t5x_compat.vocabulary import SentencePieceVocabulary

__all__ = [
    "T5X_AVAILABLE",
    "DecoderParams",
    "SentencePieceVocabulary",
    "SpeculativeEncoderDecoderModel",
    "draft_restore_fn",
    "speculative_sample",
    "t5x_sampling",
]
