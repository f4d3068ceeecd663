"""Printable text as a decode streams: ``TextStream`` turns a row's growing ids into pieces.

The rounds themselves come from ``SpeculativeDecoder.stream`` (``spec_decode.core.decoder``):
the same ``round`` the while loop runs, one jitted call at a time, so the tokens equal ``run``'s.

    stream = decoder.stream(params, prompts, lengths, keys)
    text = TextStream(tokenizer)
    for new_tokens in stream:          # one array per row: the tokens it just committed
        print(text.push(new_tokens[0]), end="")
    print(text.flush())
    result = stream.result()           # a DecodeResult, as decoder.run's
"""

from __future__ import annotations

from collections.abc import Sequence

from spec_decode.core.stream import DecodeStream

__all__ = ["DecodeStream", "TextStream"]


class TextStream:
    """Printable text pieces of a growing id sequence, safe across split UTF-8 characters.

    A byte-level BPE token can end in the middle of a multi-byte character; decoding it alone
    gives U+FFFD. So every update decodes the whole sequence and returns only the new suffix,
    holding back a trailing U+FFFD until the character is complete.
    """

    def __init__(self, tokenizer, skip_special_tokens: bool = True):
        self._tokenizer = tokenizer
        self._skip_special = skip_special_tokens
        self._ids: list[int] = []
        self._shown = ""

    def push(self, ids: Sequence[int]) -> str:
        """Add ids; return the text that became printable (possibly empty)."""
        self._ids.extend(int(i) for i in ids)
        text = self._tokenizer.decode(self._ids, skip_special_tokens=self._skip_special)
        if text.endswith("\ufffd") or not text.startswith(self._shown):
            return ""
        piece, self._shown = text[len(self._shown) :], text
        return piece

    def flush(self) -> str:
        """Whatever is still held back (an incomplete character at the very end)."""
        text = self._tokenizer.decode(self._ids, skip_special_tokens=self._skip_special)
        piece = text[len(self._shown) :] if text.startswith(self._shown) else ""
        self._shown = text
        return piece
