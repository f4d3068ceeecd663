"""T5 the T5X way: T5X's parameter tree and semantics, cached K-token decoding for the core."""

from spec_decode.models.t5.cache import T5Cache
from spec_decode.models.t5.config import T5Config
from spec_decode.models.t5.decoding_model import (
    T5DecodeParams,
    T5Decoding,
    T5Inputs,
    make_t5_inputs,
)
from spec_decode.models.t5.layers import relative_position_bucket
from spec_decode.models.t5.network import Transformer
from spec_decode.models.t5.scoring import score_batch, token_scores

__all__ = [
    "T5Cache",
    "T5Config",
    "T5Decoding",
    "T5DecodeParams",
    "T5Inputs",
    "Transformer",
    "make_t5_inputs",
    "relative_position_bucket",
    "score_batch",
    "token_scores",
]
