"""The base class of ``SpeculativeEncoderDecoderModel``: T5X's model when t5x imports.

T5X is optional (it is not on PyPI). With it, the model subclasses
``t5x.models.EncoderDecoderModel`` so that T5X's trainer, evaluator and ``infer.py`` accept it;
without it, ``StandaloneBase`` provides the few members of T5X's ``BaseTransformerModel`` that
inference uses, with the same names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax

from spec_decode.core.contract import Params

try:  # T5X is optional (not on PyPI); the model works the same without it.
    from t5x import models as _t5x_models
except ImportError:
    _t5x_models = None

T5X_AVAILABLE = _t5x_models is not None


@dataclasses.dataclass(frozen=True)
class DecoderParams:
    """Defaults for ``predict_batch_with_aux`` (T5X's ``models.DecoderParams``)."""

    return_all_decodes: bool = False
    num_decodes: int = 1


class StandaloneBase:
    """The part of T5X's ``BaseTransformerModel`` that inference uses, when t5x is absent."""

    def __init__(
        self,
        module: nn.Module,
        input_vocabulary: Any,
        output_vocabulary: Any,
        optimizer_def: Any = None,
        decode_fn: Any = None,
        feature_converter_cls: Any = None,
        label_smoothing: float = 0.0,
        z_loss: float = 0.0,
        loss_normalizing_factor: Any = None,
        default_decoder_params: DecoderParams | None = None,
    ):
        self.module = module
        self._input_vocabulary = input_vocabulary
        self._output_vocabulary = output_vocabulary
        self.optimizer_def = optimizer_def
        self._decode_fn = decode_fn
        self._label_smoothing = label_smoothing
        self._z_loss = z_loss
        self._loss_normalizing_factor = loss_normalizing_factor
        self._default_decoder_params = default_decoder_params or DecoderParams()
        if feature_converter_cls is not None:
            self.FEATURE_CONVERTER_CLS = feature_converter_cls

    @property
    def input_vocabulary(self):
        return self._input_vocabulary

    @property
    def output_vocabulary(self):
        return self._output_vocabulary

    @property
    def decode_fn(self):
        return self._decode_fn

    def predict_batch(self, params: Params, batch: Mapping, rng: jax.Array | None = None):
        """The predictions alone (T5X's ``BaseModel.predict_batch``)."""
        return self.predict_batch_with_aux(params, batch, rng=rng)[0]


# What ``SpeculativeEncoderDecoderModel`` subclasses: T5X's own model class whenever t5x imports.
EncoderDecoderModelBase = _t5x_models.EncoderDecoderModel if T5X_AVAILABLE else StandaloneBase
