"""Training an EAGLE draft by teacher forcing (distill/eagle.py) on a tiny random target.

The smoke run (scripts/train_eagle.py --smoke: 256 target continuations, 150 steps) must halve
the loss and raise alpha at temperature 1 on held-out prompts above the untrained draft's (the
target's first block with fc ignoring the features): the features are learned and used.
"""

import functools
import importlib.util
import json
import pathlib

import numpy as np
import optax
import pytest

from spec_decode.distill.eagle import shifted, train_eagle

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "train_eagle.py"


def _script():
    spec = importlib.util.spec_from_file_location("train_eagle", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smoke_training_halves_the_loss_and_raises_alpha(capsys):
    assert _script().main(["--smoke"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["last_loss"] < 0.6 * report["first_loss"], report
    assert report["alpha"]["trained"] > report["alpha"]["untrained"] + 0.03, report


def test_features_are_read_one_position_back():
    hidden = np.arange(2 * 3 * 1, dtype=np.float32).reshape(2, 3, 1)
    np.testing.assert_array_equal(shifted(hidden)[:, :, 0], [[0, 0, 1], [0, 3, 4]])


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(steps=0, batch=2), r"steps=0 is not allowed"),
        (dict(steps=1, batch=0), r"batch=0 is not allowed"),
    ],
)
def test_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        train_eagle(None, None, None, {}, np.zeros((2, 4), np.int32), np.full(2, 4), **kwargs)


def _tiny():
    import jax

    from spec_decode.drafts.eagle import EagleDraft, eagle_config, init_eagle
    from spec_decode.models import tiny_llama

    target, target_params = tiny_llama(2, seed=0, vocab_size=64, max_length=32)
    draft = EagleDraft(eagle_config(target.config, 1))
    # random fc: the target-start draft ignores the features, which these tests must see
    params = init_eagle(draft, target_params, jax.random.key(1), from_target=False)
    tokens = jax.random.randint(jax.random.key(2), (3, 12), 2, 64)
    return target, target_params, draft, params, tokens, np.ones((3, 12), np.float32)


def test_rollout_passes_read_the_previous_pass_predicted_features():
    import jax
    import jax.numpy as jnp

    from spec_decode.distill.eagle import eagle_loss
    from spec_decode.drafts.eagle import EagleDraft

    target, target_params, draft, params, tokens, mask = _tiny()
    own = EagleDraft.own(params)
    frozen = {k: v for k, v in params.items() if k not in own}
    loss = functools.partial(eagle_loss, draft, own, frozen, target, target_params, tokens, mask,
                             0.1)  # fmt: skip
    hidden = target.forward_hidden(target_params, tokens)
    log_p = jax.nn.log_softmax(target.logits(target_params, hidden), axis=-1)

    def one_pass(read):  # the loss of one pass written out, and its predicted features
        logits, predicted = draft.forward_conditioned(params, tokens, shifted(read))
        log_q = jax.nn.log_softmax(logits, axis=-1)
        kl = jnp.sum(jnp.exp(log_p) * (log_p - log_q), axis=-1)
        feature = jnp.mean(optax.huber_loss(predicted, hidden), axis=-1)
        return float(jnp.mean(kl + 0.1 * feature)), predicted

    first, predicted = one_pass(hidden)
    second, _ = one_pass(predicted)
    np.testing.assert_allclose(float(loss()), first, rtol=1e-5)  # plain teacher forcing
    np.testing.assert_allclose(float(loss(rollout=2)), (first + second) / 2, rtol=1e-5)
    assert abs(second - first) > 1e-4  # the second pass did read other features
    key = jax.random.key(3)
    noisy = float(loss(noise=0.5, key=key))
    assert noisy != float(loss()) and noisy == float(loss(noise=0.5, key=key))


def test_training_with_rollout_and_noise_lowers_the_loss():
    target, target_params, draft, params, tokens, _ = _tiny()
    sequences = np.asarray(tokens)
    _, losses = train_eagle(target, target_params, draft, params, sequences,
                            np.full(len(sequences), sequences.shape[1]), steps=40, batch=3,
                            learning_rate=3e-3, rollout=2, noise=0.05)  # fmt: skip
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5]), losses


@pytest.mark.parametrize(
    "kwargs, pattern",
    [(dict(rollout=0), r"rollout=0 is not allowed"), (dict(noise=-1.0), r"noise=-1.0 is not")],
)
def test_bad_rollout_and_noise(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        train_eagle(None, None, None, {}, np.zeros((2, 4), np.int32), np.full(2, 4), steps=1,
                    batch=1, **kwargs)  # fmt: skip


@pytest.mark.parametrize("argv, message", [
    (["--rollout", "0"], "--rollout 0 is not allowed"),
    (["--feature-noise", "-0.5"], "--feature-noise -0.5 is not allowed"),
])  # fmt: skip
def test_script_refuses_bad_rollout_and_noise_by_name(argv, message, capsys):
    with pytest.raises(SystemExit):
        _script().parse_args(argv)
    assert message in capsys.readouterr().err
