"""DistillSpec-style distillation of a T5 draft (the student) from a T5 target (the teacher).

The public entry point is ``DistillTrainer``, a ``T5Trainer`` with a teacher: the same
Adafactor, rsqrt schedule, ``TrainConfig``, ``fit``, ``evaluate`` and checkpoints, with the
loss replaced by a divergence between the teacher's and the student's next-token
distributions at every target position:

    trainer = DistillTrainer(student_config, TrainConfig(steps=20_000), teacher_config=target,
                             teacher_params=target_params, kind="on_policy")   # divergence tvd
    state = trainer.init_state(jax.random.key(0), student_params)   # or random (None)
    state, history = trainer.fit(state, task_batches, eval_batches)

Two kinds, after Zhou et al. 2024 (DistillSpec), differ in the sequences scored:

    forward_kl  the task's own targets, teacher-forced (``data.batches``; packing allowed);
                loss KL(teacher || student).
    on_policy   the student's samples at temperature 1 from each batch's inputs, drawn with the
                library's decoder (``autoregressive_decode`` over ``T5Decoding``) from the
                current params before every step; loss ``divergence``: 'tvd' (total variation,
                the default: DistillSpec found it best for speculative decoding) or 'kl'.

Per position, with p the teacher's and q the student's distribution (float32, temperature 1),

    kl  = sum_v p_v (log p_v - log q_v)          tvd = 1/2 sum_v |p_v - q_v|

both 0 exactly when q = p; summed with the batch's loss weights, plus T5X's z-loss on the
student (``TrainConfig.z_loss``). ``evaluate`` reports the per-token divergence as 'loss' and
the top-1 agreement of student and teacher as 'accuracy', on the sequences it is given (no
sampling).

The teacher's params travel into the jitted step inside the batch (key 'teacher'), so they
are traced, never compiled in: trainers that differ only in ``teacher_params`` compare equal
and share one compiled step.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from spec_decode.models.t5 import T5Config, T5Decoding
from spec_decode.train.data import shift_right
from spec_decode.train.trainer import _MODEL_KEYS, T5Trainer, TrainState

Params = Any
KINDS = ("forward_kl", "on_policy")
DIVERGENCES = ("tvd", "kl")


def divergence_sums(
    student_logits: jax.Array,  # [B, T, V]
    teacher_logits: jax.Array,  # [B, T, V]
    weights: jax.Array,  # [B, T]
    divergence: str = "tvd",
    z_loss: float = 0.0,
) -> dict[str, jax.Array]:
    """Weighted sums over [B, T]: 'loss' (divergence + z-loss), 'z_loss', 'correct', 'weight'.

    The keys of ``loss.cross_entropy_sums``, so ``T5Trainer``'s step and ``evaluate`` read
    them unchanged; 'correct' counts positions where the two argmaxes agree.
    """
    if divergence not in DIVERGENCES:
        raise ValueError(
            f"divergence={divergence!r} is not allowed: it must be one of {DIVERGENCES}"
        )
    log_q = jax.nn.log_softmax(student_logits.astype(jnp.float32), axis=-1)
    log_p = jax.nn.log_softmax(teacher_logits.astype(jnp.float32), axis=-1)
    p = jnp.exp(log_p)
    if divergence == "kl":
        per_position = jnp.sum(p * (log_p - log_q), axis=-1)  # [B, T]
    else:
        per_position = 0.5 * jnp.sum(jnp.abs(p - jnp.exp(log_q)), axis=-1)
    log_z = jax.nn.logsumexp(student_logits.astype(jnp.float32), axis=-1)
    z = z_loss * jnp.square(log_z)
    weights = weights.astype(jnp.float32)
    agree = jnp.argmax(student_logits, -1) == jnp.argmax(teacher_logits, -1)
    return {
        "loss": jnp.sum((per_position + z) * weights),
        "z_loss": jnp.sum(z * weights),
        "correct": jnp.sum(agree.astype(jnp.float32) * weights),
        "weight": jnp.sum(weights),
    }


@dataclasses.dataclass(frozen=True)
class DistillTrainer(T5Trainer):
    """``T5Trainer`` (the student's config) plus a teacher; see the module docstring.

    Attributes:
      teacher_config: the teacher's ``T5Config``; its vocab_size must be the student's.
      teacher_params: the teacher's T5X tree (not compared or hashed: it is traced).
      kind: 'forward_kl' or 'on_policy'.
      divergence: 'kl' or 'tvd'; None takes the kind's (forward_kl: 'kl', on_policy: 'tvd').
      sample_seed: the on-policy samples' keys, folded with the step.
    """

    teacher_config: T5Config | None = None
    teacher_params: Params = dataclasses.field(default=None, compare=False, repr=False)
    # kind and sample_seed are read outside the compiled step (which samples, and with which
    # keys): compare=False keeps them out of the hash, so the kinds share compiled steps.
    kind: str = dataclasses.field(default="forward_kl", compare=False)
    divergence: str | None = None
    sample_seed: int = dataclasses.field(default=0, compare=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r} is not allowed: it must be one of {KINDS}")
        if self.divergence is None:
            object.__setattr__(self, "divergence", "kl" if self.kind == "forward_kl" else "tvd")
        if self.divergence not in DIVERGENCES:
            raise ValueError(
                f"divergence={self.divergence!r} is not allowed: it must be one of {DIVERGENCES}"
            )
        if self.kind == "forward_kl" and self.divergence != "kl":
            raise ValueError(
                f"divergence={self.divergence!r} is not allowed with kind='forward_kl': it is "
                "'kl' (use kind='on_policy' for 'tvd')"
            )
        if not isinstance(self.teacher_config, T5Config):
            raise ValueError(
                f"teacher_config={self.teacher_config!r} is not allowed: it must be a T5Config"
            )
        if self.teacher_config.vocab_size != self.model_config.vocab_size:
            raise ValueError(
                f"teacher_config.vocab_size={self.teacher_config.vocab_size} is not allowed: it "
                f"must equal the student's {self.model_config.vocab_size} (one vocabulary)"
            )
        if self.teacher_params is None:
            raise ValueError("teacher_params=None is not allowed: pass the teacher's T5X tree")

    @property
    def teacher(self) -> T5Decoding:
        return T5Decoding(dataclasses.replace(self.teacher_config, dropout_rate=0.0))

    def _sums(self, params, batch, dropout_key=None) -> dict[str, jax.Array]:
        student = self.logits(params, batch, dropout_key)
        inputs = {k: jnp.asarray(batch[k]) for k in _MODEL_KEYS if k in batch}
        teacher = self.teacher.module.apply(
            {"params": batch["teacher"]}, **inputs, enable_dropout=False
        )
        return divergence_sums(
            student,
            jax.lax.stop_gradient(teacher),
            batch["decoder_loss_weights"],
            self.divergence,
            self.config.z_loss,
        )

    def train_step(self, state: TrainState, batch: dict) -> tuple[TrainState, dict]:
        """One step on ``batch`` (forward_kl) or on the student's samples for it (on_policy)."""
        if self.kind == "on_policy":
            batch = self.sample_batch(state.params, batch, int(state.step))
        return T5Trainer.train_step(self, state, {**batch, "teacher": self.teacher_params})

    def eval_step(self, params: Params, batch: dict) -> dict:
        """The batch's divergence sums on its own targets (no sampling)."""
        return T5Trainer.eval_step(self, params, {**batch, "teacher": self.teacher_params})

    def sample_batch(self, params: Params, batch: dict, step: int = 0) -> dict:
        """The batch with its targets replaced by the student's samples (T = 1, same width).

        Each row is drawn from its encoder inputs until EOS (kept, weight 1) or the batch's
        target width; positions after it are padding (weight 0).
        """
        if "encoder_segment_ids" in batch:
            raise ValueError(
                "a packed batch is not allowed for kind='on_policy': sample from one example "
                "per row (pack=False)"
            )
        key = jax.random.fold_in(jax.random.key(self.sample_seed), step)
        tokens, lengths = _sample(self, params, jnp.asarray(batch["encoder_input_tokens"]), key,
                                  batch["decoder_target_tokens"].shape[1])  # fmt: skip
        tokens, lengths = np.asarray(tokens), np.asarray(lengths)
        T = tokens.shape[1]
        real = np.asarray(batch["encoder_input_tokens"]).any(axis=1)  # padding rows stay empty
        weights = (np.arange(T)[None, :] < lengths[:, None]) & real[:, None]
        targets = np.where(weights, tokens, 0).astype(np.int32)
        return {
            "encoder_input_tokens": np.asarray(batch["encoder_input_tokens"]),
            "decoder_target_tokens": targets,
            "decoder_input_tokens": shift_right(targets),
            "decoder_loss_weights": weights.astype(np.float32),
        }


def _sample(trainer: DistillTrainer, params, encoder_tokens, key, max_new_tokens: int):
    """Student samples [B, max_new_tokens] and lengths [B]; the decoder's run is jitted."""
    from spec_decode.core.functional import autoregressive_decode
    from spec_decode.core.sampling import SamplingConfig
    from spec_decode.models.t5 import make_t5_inputs

    B = encoder_tokens.shape[0]
    result = autoregressive_decode(
        trainer.model, make_t5_inputs(params, encoder_tokens), np.zeros((B, 1), np.int32),
        key=key, max_new_tokens=max_new_tokens, sampling=SamplingConfig(temperature=1.0),
        eos_id=1,
    )  # fmt: skip
    return result.tokens, result.lengths
