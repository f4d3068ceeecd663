"""Training an EAGLE draft by teacher forcing (distill/eagle.py) on a tiny random target.

The smoke run (scripts/train_eagle.py --smoke: 256 target continuations, 150 steps) must halve
the loss and raise alpha at temperature 1 on held-out prompts above the untrained draft's (the
target's first block with fc ignoring the features): the features are learned and used.
"""

import importlib.util
import json
import pathlib

import numpy as np
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
