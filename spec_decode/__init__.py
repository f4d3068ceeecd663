"""spec_decode: exact speculative decoding in JAX (Leviathan, Kalman, Matias, ICML 2023).

The pure functions ``draft_step``, ``parallel_verify`` and ``accept_reject`` make one round;
``speculative_decode`` composes them in one jitted ``lax.while_loop``; ``autoregressive_decode``
is the baseline in the same style. Models meet the core through ``LanguageModel``.
"""

from spec_decode.core.contract import Cache, LanguageModel, rollback
from spec_decode.core.decoder import autoregressive_decode, speculative_decode
from spec_decode.core.rejection import accept_reject
from spec_decode.core.sampling import SamplingConfig, adjusted_probs
from spec_decode.core.state import DecodeResult, DecodeState
from spec_decode.core.steps import draft_step, parallel_verify

__all__ = [
    "Cache",
    "DecodeResult",
    "DecodeState",
    "LanguageModel",
    "SamplingConfig",
    "accept_reject",
    "adjusted_probs",
    "autoregressive_decode",
    "draft_step",
    "parallel_verify",
    "rollback",
    "speculative_decode",
]
