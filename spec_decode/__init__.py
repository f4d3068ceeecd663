"""spec_decode: exact speculative decoding in JAX (Leviathan, Kalman, Matias, ICML 2023).

``SpeculativeDecoder`` is the loop: a frozen object with ``init``, ``round``, ``run`` (one jitted
``lax.while_loop``) and ``stream`` (the same round, one at a time); with ``draft=None`` it is the
autoregressive baseline. ``speculative_decode`` and ``autoregressive_decode`` are its functional
form. The pure pieces of a round, ``draft_block`` (``draft_step``), ``parallel_verify`` and
``accept_reject``, compose in any other JAX loop. Models meet the core through
``LanguageModel``.
"""

from spec_decode import _legacy_paths
from spec_decode.core.contract import Cache, LanguageModel, rollback
from spec_decode.core.decoder import DecoderParams, SpeculativeDecoder
from spec_decode.core.functional import autoregressive_decode, speculative_decode
from spec_decode.core.rejection import accept_reject
from spec_decode.core.sampling import SamplingConfig, adjusted_probs
from spec_decode.core.state import DecodeResult, DecodeState
from spec_decode.core.steps import draft_block, draft_step, parallel_verify
from spec_decode.core.stream import DecodeStream

__all__ = [
    "Cache",
    "DecodeResult",
    "DecodeState",
    "DecodeStream",
    "DecoderParams",
    "LanguageModel",
    "SamplingConfig",
    "SpeculativeDecoder",
    "accept_reject",
    "adjusted_probs",
    "autoregressive_decode",
    "draft_block",
    "draft_step",
    "parallel_verify",
    "rollback",
    "speculative_decode",
]

_legacy_paths.install()  # spec_decode.decode, spec_decode.t5, ...: see _legacy_paths.MOVED
