"""``SpeculativeEncoderDecoderModel``: T5X's ``EncoderDecoderModel`` with a draft model.

Constructed like T5X's model (``module, input_vocabulary, output_vocabulary, optimizer_def,
decode_fn, ...``) plus ``draft`` and ``gamma``; ``predict_batch_with_aux`` and ``score_batch``
keep T5X's signatures and meaning. When ``import t5x`` works the class subclasses
``t5x.models.EncoderDecoderModel``, so a T5X gin run can bind it as ``MODEL``; without t5x it
stands alone with the same methods.

One parameter tree holds both models, so a partitioner can lay out both::

    {'target': <T5 params, T5X's tree>, 'draft': <the draft's params>}

``get_initial_variables`` returns that layout for ``params`` and ``params_axes``;
``load_params`` reads it from two T5X checkpoints; in a T5X run
``spec_decode.t5x_compat.draft_restore_fn`` builds it while restoring the target checkpoint.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp

from spec_decode.core.contract import LanguageModel, Params
from spec_decode.models.t5 import T5Config, T5Decoding, make_t5_inputs
from spec_decode.models.t5.scoring import weighted_token_scores
from spec_decode.t5x_compat.base import DecoderParams, EncoderDecoderModelBase
from spec_decode.t5x_compat.decode_fn import speculative_sample

PARAM_KEYS = ("target", "draft")


class SpeculativeEncoderDecoderModel(EncoderDecoderModelBase):
    """A T5 target (``module``) decoded speculatively with ``draft``, T5X's model interface.

    Args:
      module: the target network: ``spec_decode.models.t5.Transformer`` or T5X's
        ``examples/t5/network.Transformer`` (its config is read by field name).
      input_vocabulary, output_vocabulary: seqio-style vocabularies (``eos_id`` is used).
      optimizer_def, feature_converter_cls, label_smoothing, z_loss, loss_normalizing_factor,
        default_decoder_params: as in T5X (kept for T5X's training and evaluation code).
      decode_fn: a function with ``speculative_sample``'s ``target``, ``draft`` and ``gamma``
        keywords (default ``speculative_sample``; bind its sampling settings with gin).
      draft: a ``T5Config``, a T5 network module (ours or T5X's), a ``T5Decoding``, or any
        ``spec_decode.LanguageModel`` (e.g. an n-gram draft); same vocabulary size as the target.
      gamma: draft tokens per round, or "auto" (chosen each round over measured costs; see
        ``speculative_sample``); a ``decoder_params['gamma']`` overrides it per call.
    """

    def __init__(
        self,
        module: nn.Module,
        input_vocabulary: Any,
        output_vocabulary: Any,
        optimizer_def: Any = None,
        decode_fn: Any = speculative_sample,
        feature_converter_cls: Any = None,
        label_smoothing: float = 0.0,
        z_loss: float = 0.0,
        loss_normalizing_factor: Any = None,
        default_decoder_params: Any = None,
        *,
        draft: Any = None,
        gamma: int | str = 4,
    ):
        self.target_model = T5Decoding(t5_config_of(module, "module"))
        self.draft_model = draft_model_of(draft)
        if self.draft_model.vocab_size != self.target_model.vocab_size:
            raise ValueError(
                f"draft vocab_size={self.draft_model.vocab_size} is not allowed: it must equal "
                f"the target's vocab_size={self.target_model.vocab_size}"
            )
        if gamma != "auto" and (isinstance(gamma, bool) or not isinstance(gamma, int) or gamma < 1):
            raise ValueError(
                f"gamma={gamma!r} is not allowed: it must be an integer >= 1 or 'auto'"
            )
        self.gamma = gamma
        if decode_fn is None:
            decode_fn = speculative_sample
        accepted = _keywords(decode_fn)
        if accepted is not None and not {"target", "draft"} <= accepted:
            raise ValueError(
                f"decode_fn={decode_fn!r} is not allowed: it must take the keywords 'target' "
                "and 'draft' (as spec_decode.t5x_compat.speculative_sample does)"
            )
        self._decode_keywords = accepted
        super().__init__(
            module=module,
            input_vocabulary=input_vocabulary,
            output_vocabulary=output_vocabulary,
            optimizer_def=optimizer_def,
            decode_fn=decode_fn,
            feature_converter_cls=feature_converter_cls,
            label_smoothing=label_smoothing,
            z_loss=z_loss,
            loss_normalizing_factor=loss_normalizing_factor,
            default_decoder_params=default_decoder_params or DecoderParams(),
        )

    # ----------------------------------------------------------------------------- parameters

    def split_params(self, params: Params) -> tuple[Params, Params]:
        """{'target': ..., 'draft': ...} (a Flax ``{'params': ...}`` wrapper allowed) -> both."""
        if isinstance(params, Mapping) and set(params) == {"params"}:
            params = params["params"]
        if not (isinstance(params, Mapping) and set(params) == set(PARAM_KEYS)):
            keys = sorted(params) if isinstance(params, Mapping) else type(params).__name__
            raise ValueError(
                f"params with keys {keys} is not allowed: SpeculativeEncoderDecoderModel "
                "takes one tree {'target': <target params>, 'draft': <draft params>} (see "
                "load_params, get_initial_variables and draft_restore_fn)"
            )
        return params["target"], params["draft"]

    def bind(
        self, params: Params, encoder_input_tokens: jax.Array
    ) -> tuple[tuple[LanguageModel, Params], tuple[LanguageModel, Params]]:
        """The contract's (model, params) pairs of target and draft for these encoder tokens."""
        target_params, draft_params = self.split_params(params)
        target = (self.target_model, make_t5_inputs(target_params, encoder_input_tokens))
        if isinstance(self.draft_model, T5Decoding):
            draft_params = make_t5_inputs(draft_params, encoder_input_tokens)
        return target, (self.draft_model, draft_params)

    def get_initial_variables(
        self,
        rng: jax.Array,
        input_shapes: Mapping[str, Any],
        input_types: Mapping[str, Any] | None = None,
    ) -> flax.core.FrozenDict:
        """Random ``params`` and ``params_axes``, each {'target': ..., 'draft': ...}.

        Only a T5 draft has initial variables; other drafts bring their own params.
        """
        del input_types  # token inputs are always int32 here
        if not isinstance(self.draft_model, T5Decoding):
            raise ValueError(
                f"get_initial_variables is not available for draft={self.draft_model!r}: only "
                "T5 drafts have initial variables; build {'target': ..., 'draft': ...} yourself"
            )
        encoder = jnp.ones(input_shapes["encoder_input_tokens"], jnp.int32)
        decoder = jnp.ones(input_shapes["decoder_input_tokens"], jnp.int32)
        target_key, draft_key = jax.random.split(rng)
        target = self.module.init(target_key, encoder, decoder, decoder, enable_dropout=False)
        draft = self.draft_model.module.init(
            draft_key, encoder, decoder, decoder, enable_dropout=False
        )
        return flax.core.freeze(
            {
                collection: {"target": target[collection], "draft": draft[collection]}
                for collection in ("params", "params_axes")
                if collection in target
            }
        )

    def load_params(
        self,
        target_checkpoint_path: str,
        draft_checkpoint_path: str,
        restore_dtype: Any = None,
    ) -> Params:
        """{'target': ..., 'draft': ...} from two T5X checkpoints (either format, checked)."""
        from spec_decode.formats.t5x import load_t5x_checkpoint

        if not isinstance(self.draft_model, T5Decoding):
            raise ValueError(
                f"load_params is not available for draft={self.draft_model!r}: only a T5 draft "
                "has a T5X checkpoint"
            )
        trees = {}
        for name, model, path in (
            ("target", self.target_model, target_checkpoint_path),
            ("draft", self.draft_model, draft_checkpoint_path),
        ):
            expected = jax.eval_shape(model.init, jax.random.key(0))
            loaded = load_t5x_checkpoint(path, restore_dtype, expected=expected)["target"]
            trees[name] = jax.tree.map(jnp.asarray, loaded)
        return trees

    # ----------------------------------------------------------------------------- inference

    def predict_batch_with_aux(
        self,
        params: Params,
        batch: Mapping[str, jax.Array],
        rng: jax.Array | None = None,
        decoder_params: Mapping[str, Any] | None = None,
        return_all_decodes: bool | None = None,
        num_decodes: int | None = None,
        prompt_with_targets: bool = False,
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Decode a batch speculatively; T5X's arguments and returns, plus statistics.

        Returns decodes [B, L] (or [B, num_decodes, L] with ``return_all_decodes``, sorted
        ascending by score) and aux with ``scores`` [B] (or [B, num_decodes]) and, when the
        decode_fn reports them, the per-example ``accepted_tokens``, ``target_calls``,
        ``draft_calls`` and ``generated_tokens`` in the same shape.
        """
        defaults = self._default_decoder_params
        if return_all_decodes is None:
            return_all_decodes = defaults.return_all_decodes
        if num_decodes is None:
            num_decodes = defaults.num_decodes
        decoder_input_tokens = jnp.asarray(batch["decoder_input_tokens"], jnp.int32)
        if prompt_with_targets:
            # T5X strips EOS from the prompt so that decoding does not stop right after it.
            eos = self.output_vocabulary.eos_id
            prompt = decoder_input_tokens * (decoder_input_tokens != eos)
        else:
            prompt = jnp.zeros_like(decoder_input_tokens)

        kwargs = dict(decoder_params or {})
        if rng is not None:
            if kwargs.get("decode_rng") is not None:
                raise ValueError(
                    "rng and decoder_params['decode_rng'] are not allowed together: pass one"
                )
            kwargs["decode_rng"] = rng
        if kwargs.get("eos_id") is None:
            kwargs["eos_id"] = getattr(self.output_vocabulary, "eos_id", None) or 1
        kwargs.setdefault("gamma", self.gamma)
        if self._decode_keywords is None or "return_statistics" in self._decode_keywords:
            kwargs["return_statistics"] = True
        target, draft = self.bind(params, batch["encoder_input_tokens"])
        outputs = self.decode_fn(
            inputs=prompt,
            cache=None,
            tokens_to_logits=None,
            num_decodes=num_decodes,
            cache_offset=0,
            target=target,
            draft=draft,
            **kwargs,
        )
        decodes, scores = outputs[:2]
        aux = {"scores": scores, **(outputs[2] if len(outputs) > 2 else {})}
        if return_all_decodes:
            return decodes, aux
        return decodes[:, -1, :], {name: value[:, -1] for name, value in aux.items()}

    def _compute_logits(
        self,
        params: Params,
        batch: Mapping[str, jax.Array],
        dropout_rng: jax.Array | None = None,
        mutable: Any = False,
        other_variables: Mapping | None = None,
    ):
        """The target's teacher-forced logits [B, T, V] (T5X's loss and eval use them)."""
        target_params, _ = self.split_params(params)
        rngs = {"dropout": dropout_rng} if dropout_rng is not None else None
        return self.module.apply(
            {"params": target_params, **(other_variables or {})},
            batch["encoder_input_tokens"],
            batch["decoder_input_tokens"],
            batch["decoder_target_tokens"],
            encoder_segment_ids=batch.get("encoder_segment_ids"),
            decoder_segment_ids=batch.get("decoder_segment_ids"),
            enable_dropout=rngs is not None,
            rngs=rngs,
            mutable=mutable,
        )

    def score_batch(
        self,
        params: Params,
        batch: Mapping[str, jax.Array],
        return_intermediates: bool = False,
    ):
        """The target's log-likelihood of the targets [B] (T5X's ``score_batch``).

        ``decoder_loss_weights`` default to 1 at non-padding targets when absent. With
        ``return_intermediates`` also returns {'decoder': {'target_tokens', 'loss_weights',
        'token_scores'}} (each a one-element tuple, as T5X's sown values are).
        """
        target_params, _ = self.split_params(params)
        targets, weights, scores = weighted_token_scores(
            self.target_model.config, target_params, batch
        )  # [B, T] each
        if return_intermediates:
            intermediates = {
                "decoder": {
                    "target_tokens": (targets,),
                    "loss_weights": (weights,),
                    "token_scores": (scores,),
                }
            }
            return scores.sum(-1), intermediates
        return scores.sum(-1)


def t5_config_of(module: Any, name: str) -> T5Config:
    """Our ``T5Config`` from a T5 network module or config, ours or T5X's (same field names)."""
    config = getattr(module, "config", module)
    if isinstance(config, T5Config):
        return config
    fields = [field.name for field in dataclasses.fields(T5Config)]
    if not all(hasattr(config, field) for field in ("vocab_size", "emb_dim", "num_heads")):
        raise ValueError(
            f"{name}={module!r} is not allowed: it must be a T5 Transformer module or a "
            "T5Config (spec_decode.models.t5's or T5X's examples/t5/network.T5Config)"
        )
    return T5Config(**{f: getattr(config, f) for f in fields if hasattr(config, f)})


def draft_model_of(draft: Any) -> LanguageModel:
    """The contract model for a ``draft`` argument (see ``SpeculativeEncoderDecoderModel``)."""
    if draft is None:
        raise ValueError(
            "draft=None is not allowed: pass a T5Config, a T5 Transformer module, a T5Decoding "
            "or any spec_decode.LanguageModel"
        )
    if isinstance(draft, LanguageModel):  # T5Decoding, n-gram drafts, any contract model
        return draft
    return T5Decoding(t5_config_of(draft, "draft"))


def _keywords(fn: Any) -> set[str] | None:
    """The keyword names ``fn`` accepts (None when it takes **kwargs or has no signature)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters}
