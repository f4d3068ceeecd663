"""Decoding one round at a time: the rounds of ``SpeculativeDecoder.run``, shown as they commit."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from spec_decode.core.decoder import DecoderParams, SpeculativeDecoder, _round
from spec_decode.core.state import DecodeResult, DecodeState


class DecodeStream:
    """Rounds one jitted call at a time; each step yields what every row committed in it.

    The rounds are ``SpeculativeDecoder.round``, the same function the while loop runs, from
    the same initial state, so the tokens equal ``run``'s for the same keys. Iterating twice
    continues where the first iteration stopped; ``result()`` gives the ``DecodeResult`` so far.
    """

    def __init__(self, decoder: SpeculativeDecoder, params: DecoderParams, state: DecodeState):
        self._decoder, self._params, self._state = decoder, params, state
        self._emitted = np.zeros((state.tokens.shape[0],), np.int64)

    @property
    def state(self) -> DecodeState:
        return self._state

    def __iter__(self) -> Iterator[list[np.ndarray]]:
        while not bool(np.all(np.asarray(self._state.done))):
            self._state = _round(self._decoder, self._params, self._state)
            num_generated = np.asarray(self._state.num_generated)
            tokens = np.asarray(self._state.tokens)
            new = [tokens[b, self._emitted[b] : n] for b, n in enumerate(num_generated)]
            self._emitted = num_generated.astype(np.int64)
            yield new

    def result(self) -> DecodeResult:
        return self._decoder.result(self._state)
