"""Chunked prefill writes what one ``extend`` over the whole prompt writes.

Properties: the cache at every valid position and the next token's logits equal the one-shot
path's (several chunk sizes, ragged rows, chunk boundaries inside and at the end of prompts,
rows starting at different lengths); blocked attention equals plain attention; greedy decoding
after a prompt longer than a chunk equals decoding after a one-shot prefill, token for token.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_decode.core import contract
from spec_decode.core import prefill as prefill_lib
from spec_decode.core.contract import rollback
from spec_decode.core.decoder import DecoderParams, SpeculativeDecoder
from spec_decode.models.llama import attention, tiny_llama

VOCAB = 64


@functools.cache
def _llama(num_layers=2, seed=0):
    return tiny_llama(num_layers, seed, vocab_size=VOCAB, max_length=1024)


@dataclasses.dataclass(frozen=True)
class ExtendOnly:
    """A model without the optional ``prefill``: the contract's fallback path."""

    model: object

    vocab_size = property(lambda self: self.model.vocab_size)
    max_length = property(lambda self: self.model.max_length)

    def init_cache(self, params, batch_size, max_length):
        return self.model.init_cache(params, batch_size, max_length)

    def extend(self, params, tokens, cache):
        return self.model.extend(params, tokens, cache)

    def cache_logical_axes(self):
        return self.model.cache_logical_axes()


def _valid_equal(got, want, lengths):
    for b, n in enumerate(np.asarray(lengths)):
        for name in ("k", "v"):
            np.testing.assert_allclose(
                getattr(got, name)[:, b, :n], getattr(want, name)[:, b, :n], atol=1e-5, rtol=1e-5
            )


@pytest.mark.parametrize(
    "width, chunk, cache_length",
    [(37, 8, 50), (40, 8, 40), (41, 16, 41), (24, 8, 30), (7, 8, 12), (33, 32, 40)],
)  # boundaries inside the prompt, at its end, and a cache no longer than the prompt
def test_chunked_prefill_equals_one_extend(width, chunk, cache_length):
    model, params = _llama()
    rng = np.random.default_rng(width)
    tokens = jnp.asarray(rng.integers(0, VOCAB, (3, width)), jnp.int32)
    lengths = jnp.asarray([width, width - 5, 1 + width // 2], jnp.int32)  # ragged rows
    empty = model.init_cache(params, 3, cache_length)
    _, want = model.extend(params, tokens, empty)
    got = jax.jit(functools.partial(prefill_lib.chunked_prefill, model, params, chunk=chunk))(
        tokens, empty
    )
    assert np.array_equal(got.lengths, want.lengths)
    _valid_equal(got, want, lengths - 1)
    # The next token after each row's prompt (its last token, as the decoders feed it).
    last = jnp.take_along_axis(tokens, (lengths - 1)[:, None], axis=1)
    if width < cache_length:
        got_logits, _ = model.extend(params, last, rollback(got, lengths - 1))
        want_logits, _ = model.extend(params, last, rollback(want, lengths - 1))
        np.testing.assert_allclose(got_logits, want_logits, atol=1e-5, rtol=1e-5)


def test_prefill_from_ragged_lengths_equals_extend():
    model, params = _llama()
    rng = np.random.default_rng(1)
    start = jnp.asarray([0, 5, 17], jnp.int32)
    cache = model.init_cache(params, 3, 64)
    _, cache = model.extend(params, jnp.asarray(rng.integers(0, VOCAB, (3, 20))), cache)
    cache = rollback(cache, start)
    tokens = jnp.asarray(rng.integers(0, VOCAB, (3, 30)), jnp.int32)
    _, want = model.extend(params, tokens, cache)
    for chunk in (4, 7, 30):
        got = prefill_lib.chunked_prefill(model, params, tokens, cache, chunk)
        assert np.array_equal(got.lengths, start + 30)
        _valid_equal(got, want, start + 30)


def test_blocked_attention_equals_attend():
    rng = np.random.default_rng(2)
    normal = lambda *shape: jnp.asarray(rng.normal(size=shape), jnp.float32)
    batch, num_tokens, length = 2, 5, 13
    query = normal(batch, num_tokens, 4, 8)
    keys, values = normal(batch, num_tokens, 2, 8), normal(batch, num_tokens, 2, 8)
    cache = (normal(batch, length, 2, 8), normal(batch, length, 2, 8))
    causal = jnp.tril(jnp.ones((num_tokens, num_tokens), dtype=bool))[None]
    for lengths in ([0, 0], [3, 11], [13, 6]):  # empty, ragged, a clipped last block
        mask = jnp.arange(length) < jnp.asarray(lengths)[:, None, None]
        want = attention.attend(query, [(*cache, mask), (keys, values, causal)])
        got = attention.attend_blocked(query, keys, values, cache, mask)
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


def test_contract_prefill_uses_the_model_method_or_drops_the_logits():
    model, params = _llama()
    assert contract.has_prefill(model) and isinstance(model, contract.Prefiller)
    assert not contract.has_prefill(ExtendOnly(model))
    tokens = jnp.asarray(np.random.default_rng(3).integers(0, VOCAB, (2, 9)), jnp.int32)
    empty = model.init_cache(params, 2, 16)
    got = contract.prefill(model, params, tokens, empty)
    want = contract.prefill(ExtendOnly(model), params, tokens, empty)
    _valid_equal(got, want, [9, 9])


@pytest.mark.parametrize("with_draft", [False, True])
def test_greedy_after_a_long_prompt_equals_the_one_shot_prefill(with_draft, monkeypatch):
    model, params = _llama()
    draft, draft_params = _llama(1, 1) if with_draft else (None, None)
    rng = np.random.default_rng(4)
    prompts = rng.integers(0, VOCAB, (2, 45)).astype(np.int32)
    lengths = np.asarray([45, 30], np.int32)
    decoder = SpeculativeDecoder(model, draft, max_new_tokens=8)
    monkeypatch.setattr(prefill_lib, "PREFILL_CHUNK", 16)  # 3 chunks, the last overlapping
    chunked = decoder.run(DecoderParams(params, draft_params), prompts, lengths)
    monkeypatch.setattr(prefill_lib, "PREFILL_CHUNK", 1024)
    one_shot = SpeculativeDecoder(
        ExtendOnly(model), None if draft is None else ExtendOnly(draft), max_new_tokens=8
    ).run(DecoderParams(params, draft_params), prompts, lengths)
    np.testing.assert_array_equal(chunked.tokens, one_shot.tokens)
    np.testing.assert_array_equal(chunked.lengths, one_shot.lengths)


def test_the_app_announces_first_compilation_and_long_prefills():
    import io

    from spec_decode.app import generation

    decoder = SpeculativeDecoder(_llama()[0], max_new_tokens=3)
    out = io.StringIO()
    assert "compiling" in generation.announce(decoder, (1, 20), out)
    assert generation.announce(decoder, (1, 20), out) is None  # compiled: nothing to say
    long = (1, generation.LONG_PREFILL + 1)
    assert "compiling" in generation.announce(decoder, long, out)
    assert "prefilling 1,025 prompt tokens" in generation.announce(decoder, long, out)
    assert len(out.getvalue().splitlines()) == 3


def test_prefill_with_a_fused_attention_kernel_equals_extend():
    """GPUs' path ('xla': the cache read whole, as extend reads it) writes the same cache."""
    model, params = _llama()
    fused = type(model)(dataclasses.replace(model.config, attention="xla"))
    rng = np.random.default_rng(3)
    tokens = jnp.asarray(rng.integers(0, VOCAB, (2, 21)), jnp.int32)
    empty = model.init_cache(params, 2, 40)
    _, want = model.extend(params, tokens, empty)
    got = prefill_lib.chunked_prefill(fused, params, tokens, empty, 8)
    assert np.array_equal(got.lengths, want.lengths)
    _valid_equal(got, want, got.lengths)
