"""The decoding cache of a T5 decoder: self-attention keys/values plus the encoder's, per layer.

The encoder runs once per batch (in ``init_cache``); its cross-attention keys and values and its
padding mask stay in the cache unchanged. Self-attention keys and values are written K positions
at a time at each row's own ``lengths[b]``; positions at or beyond a row's length are garbage
that attention masks out and the next ``extend`` overwrites, so rollback is setting ``lengths``.
"""

from __future__ import annotations

import jax
from flax import struct


@struct.dataclass
class T5Cache:
    """Everything a decoder step needs besides the parameters.

    Attributes:
      self_keys: [Lyr, B, L, N, H] decoder self-attention keys, activation dtype.
      self_values: [Lyr, B, L, N, H] decoder self-attention values.
      cross_keys: [Lyr, B, S, N, H] encoder-decoder attention keys of the encoder output.
      cross_values: [Lyr, B, S, N, H] encoder-decoder attention values.
      encoder_mask: [B, S] bool, True at real (non-padding) encoder tokens.
      lengths: [B] int32, valid self-attention positions per row.
    """

    self_keys: jax.Array
    self_values: jax.Array
    cross_keys: jax.Array
    cross_values: jax.Array
    encoder_mask: jax.Array
    lengths: jax.Array

    @property
    def max_length(self) -> int:
        """L, the number of decoder positions each row can hold."""
        return self.self_keys.shape[2]
