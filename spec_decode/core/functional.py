"""The functional form of the decoder, as users have called it: one call, one ``DecodeResult``."""

from __future__ import annotations

import jax

from spec_decode import sharding
from spec_decode.core.contract import LanguageModel, Params
from spec_decode.core.decoder import DecoderParams, SpeculativeDecoder
from spec_decode.core.sampling import SamplingConfig
from spec_decode.core.state import DecodeResult


def speculative_decode(
    target: LanguageModel,
    target_params: Params,
    draft: LanguageModel,
    draft_params: Params,
    prompt_tokens: jax.Array,  # [B, P] int32, right-padded
    prompt_lengths: jax.Array | None = None,  # [B] int32 in 1..P (default: all P)
    key: jax.Array | None = None,  # one key, or [B] keys for batch-independent rows
    *,
    gamma: int = 4,
    max_new_tokens: int = 32,
    sampling: SamplingConfig = SamplingConfig(),
    eos_id: int | None = None,
    pad_id: int = 0,
    mesh: jax.sharding.Mesh | None = None,
    rules: sharding.Rules | None = None,
) -> DecodeResult:
    """Generate up to ``max_new_tokens`` per row, distributed exactly as the target would.

    Rows advance independently: each keeps its own accepted prefix every round (no row waits
    for another or is cut to the batch minimum), stops at its own EOS, and a row's tokens depend
    only on its prompt and its key, not on the other rows. ``SpeculativeDecoder(...).run``.
    """
    if draft is None:
        raise ValueError("draft=None is not allowed here: use autoregressive_decode")
    decoder = SpeculativeDecoder(
        target, draft, gamma, max_new_tokens, sampling, eos_id, pad_id, mesh, rules
    )
    return decoder.run(
        DecoderParams(target_params, draft_params), prompt_tokens, prompt_lengths, key
    )


def autoregressive_decode(
    model: LanguageModel,
    params: Params,
    prompt_tokens: jax.Array,  # [B, P] int32, right-padded
    prompt_lengths: jax.Array | None = None,  # [B]
    key: jax.Array | None = None,
    *,
    max_new_tokens: int = 32,
    sampling: SamplingConfig = SamplingConfig(),
    eos_id: int | None = None,
    pad_id: int = 0,
    mesh: jax.sharding.Mesh | None = None,
    rules: sharding.Rules | None = None,
) -> DecodeResult:
    """The baseline: one target call per token, same loop, same prefill, same stopping."""
    decoder = SpeculativeDecoder(
        model, None, None, max_new_tokens, sampling, eos_id, pad_id, mesh, rules
    )
    return decoder.run(DecoderParams(params, None), prompt_tokens, prompt_lengths, key)
