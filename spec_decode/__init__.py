"""spec_decode: exact speculative decoding in JAX (Leviathan, Kalman, Matias, ICML 2023)."""

from spec_decode.contract import Cache, LanguageModel, rollback
from spec_decode.sampling import SamplingConfig, adjusted_probs

__all__ = [
    "Cache",
    "LanguageModel",
    "SamplingConfig",
    "adjusted_probs",
    "rollback",
]
