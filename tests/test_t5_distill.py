"""DistillSpec-style T5 distillation (spec_decode/train/distill.py) with 1-layer T5s on CPU."""

import jax
import numpy as np
import pytest
from test_train_t5 import TINY
from test_train_t5 import copy_examples as examples

from spec_decode.models.t5 import T5Config
from spec_decode.train import T5Trainer, TrainConfig, batches
from spec_decode.train.distill import DistillTrainer, divergence_sums

CONFIG = TrainConfig(steps=30, warmup_steps=10, eval_every=0, log_every=10, progress=False)


def peaky_teacher(seed=1):
    """Random T5 params with the output layer scaled up: confident, far from uniform."""
    params = T5Trainer(TINY).init_state(jax.random.key(seed)).params
    dense = params["decoder"]["logits_dense"]
    return {**params, "decoder": {**params["decoder"], "logits_dense": {
        "kernel": dense["kernel"] * 3.0}}}  # fmt: skip


HELD_OUT = list(batches(examples(32, seed=1), 16, 8, 8, seed=None, repeat=False))


def test_the_divergences_are_zero_for_equal_distributions_and_match_a_hand_computation():
    logits = np.random.default_rng(0).normal(size=(2, 3, 5)).astype(np.float32)
    weights = np.ones((2, 3), np.float32)
    for divergence in ("kl", "tvd"):
        sums = divergence_sums(logits, logits, weights, divergence)
        assert abs(float(sums["loss"])) < 1e-5 and float(sums["correct"]) == 6
    other = logits[::-1]
    p = np.exp(other) / np.exp(other).sum(-1, keepdims=True)
    q = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    kl = divergence_sums(logits, other, weights, "kl")["loss"]
    tvd = divergence_sums(logits, other, weights, "tvd")["loss"]
    np.testing.assert_allclose(float(kl), np.sum(p * np.log(p / q)), rtol=1e-5)
    np.testing.assert_allclose(float(tvd), 0.5 * np.abs(p - q).sum(), rtol=1e-5)


def test_the_divergence_defaults_to_kl_teacher_forced_and_tvd_on_policy():
    make = lambda kind: DistillTrainer(TINY, teacher_config=TINY, teacher_params={}, kind=kind)
    assert make("forward_kl").divergence == "kl" and make("on_policy").divergence == "tvd"


@pytest.mark.parametrize("kind", ["forward_kl", "on_policy"])
def test_a_student_equal_to_its_teacher_has_zero_loss(kind):
    teacher = peaky_teacher()
    trainer = DistillTrainer(TINY, CONFIG, teacher_config=TINY, teacher_params=teacher, kind=kind,
                             divergence="kl")  # fmt: skip
    metrics = trainer.evaluate(teacher, HELD_OUT)
    assert abs(metrics["loss"] - metrics["z_loss"]) < 1e-6 and metrics["accuracy"] == 1.0


# Both kinds with divergence 'kl' compile one step between them (the kind is not in the hash);
# 'tvd' on policy, the default, runs in test_script_t5_recipes.py's CLI smoke run.
@pytest.mark.parametrize("kind", ["forward_kl", "on_policy"])
def test_a_distilled_student_moves_toward_its_teacher(kind):
    """30 steps (batch 16) from a random student cut its held-out divergence by >= 20%."""
    trainer = DistillTrainer(
        TINY, CONFIG, teacher_config=TINY, teacher_params=peaky_teacher(), kind=kind,
        divergence="kl",
    )  # fmt: skip
    state = trainer.init_state(jax.random.key(0))
    before = trainer.evaluate(state.params, HELD_OUT)
    stream = batches(examples(200, seed=0), 16, 8, 8, seed=0)
    state, history = trainer.fit(state, stream, HELD_OUT)
    after = history["eval"][-1][1]
    assert int(state.step) == 30
    assert after["loss"] < 0.8 * before["loss"], (before, after)


def test_on_policy_batches_are_the_students_own_samples_ending_at_eos():
    trainer = DistillTrainer(
        TINY, CONFIG, teacher_config=TINY, teacher_params=peaky_teacher(), kind="on_policy"
    )
    params = peaky_teacher(seed=2)
    batch = HELD_OUT[-1]  # 16 rows, the last 16 real, none padding
    sampled = trainer.sample_batch(params, batch, step=3)
    again = trainer.sample_batch(params, batch, step=3)
    np.testing.assert_array_equal(sampled["decoder_target_tokens"], again["decoder_target_tokens"])
    targets, weights = sampled["decoder_target_tokens"], sampled["decoder_loss_weights"]
    assert targets.shape == batch["decoder_target_tokens"].shape
    np.testing.assert_array_equal(sampled["decoder_input_tokens"][:, 1:], targets[:, :-1])
    for row, w in zip(targets, weights, strict=True):
        n = int(w.sum())
        assert n >= 1 and (w[:n] == 1).all() and (w[n:] == 0).all()
        assert 1 not in row[: n - 1] and (row[n - 1] == 1 or n == targets.shape[1])
    other = trainer.sample_batch(params, batch, step=4)["decoder_target_tokens"]
    assert not np.array_equal(other, targets)


BAD = [
    ("kind", dict(kind="reverse_kl")),
    ("divergence", dict(kind="on_policy", divergence="js")),
    ("divergence", dict(kind="forward_kl", divergence="tvd")),
    ("vocab_size", dict(teacher_config=T5Config(**{**TINY.__dict__, "vocab_size": 64}))),
    ("teacher_params", dict(teacher_params=None)),
]


@pytest.mark.parametrize("name,kwargs", BAD, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BAD)])
def test_bad_arguments_raise_value_errors_naming_them(name, kwargs):
    with pytest.raises(ValueError, match=name):
        DistillTrainer(TINY, **{"teacher_config": TINY, "teacher_params": {}, **kwargs})
