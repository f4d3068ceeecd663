"""scripts/train_t5.py's paper recipes end to end (--smoke, CPU): span-corruption pre-training,
fine-tuning from its checkpoint with quality scores, and on-policy distillation of a draft."""

import importlib.util
import json
import pathlib

import jax
import numpy as np
import pytest

from spec_decode.models.t5 import T5Config, T5Decoding
from spec_decode.train import save_checkpoint

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("train_t5", ROOT / "scripts" / "train_t5.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pretrained(script, tmp_path_factory):
    out = tmp_path_factory.mktemp("pre")
    argv = ["--smoke", "--objective", "span_corruption", "--model-dir", str(out), "--no-progress"]
    assert script.main(argv) == 0
    return out


def summary(directory):
    return json.loads((directory / "train_summary.json").read_text())


def test_span_corruption_pretraining_trains_and_reloads(pretrained):
    pre = summary(pretrained)
    assert pre["objective"] == "span_corruption" and pre["reloaded_checkpoint_matches"]
    assert pre["eval"][-1][1]["loss"] < pre["eval"][0][1]["loss"]
    assert pre["model"]["vocab_size"] % 128 == 0 and (pretrained / "vocab" / "spm.model").is_file()


def test_a_draft_starts_from_the_pretrained_checkpoint_and_distils_on_policy(
    script, pretrained, tmp_path
):
    """DistillSpec's recipe in one run: a pre-trained student, a teacher, TVD on its samples.

    (Any checkpoint of the model's shape serves as the teacher here: the pre-trained one.)
    """
    vocab = str(pretrained / "vocab" / "spm.model")
    argv = ["--smoke", "--model-dir", str(tmp_path), "--init-checkpoint", str(pretrained),
            "--teacher-checkpoint", str(pretrained), "--distill", "on_policy", "--vocab", vocab,
            "--eval-quality", "4", "--no-progress"]  # fmt: skip
    assert script.main(argv) == 0
    run = summary(tmp_path)
    assert run["vocabulary"] == vocab and run["model"] == summary(pretrained)["model"]
    assert run["distill"] == {"kind": "on_policy", "divergence": "tvd"}
    # Student == teacher at the start, so the divergence starts near 0 and stays a TVD.
    assert all(0 <= m["loss"] - m["z_loss"] <= 1 for _, m in run["eval"])
    quality = run["quality"]
    assert quality["examples"] == 4 and set(quality["model"]) == set(quality["baseline"]) == {
        "bleu"
    }
    assert 0 <= quality["model"]["bleu"] <= 100 and len(quality["samples"]) == 4


def test_a_checkpoint_that_does_not_fit_names_the_argument(script, pretrained, tmp_path):
    other = T5Config(
        vocab_size=384, emb_dim=16, num_heads=2, head_dim=8, mlp_dim=32, num_encoder_layers=1,
        num_decoder_layers=1, mlp_activations=("gelu", "linear"),
    )  # fmt: skip
    shapes = jax.eval_shape(T5Decoding(other).init, jax.random.key(0))  # no compile needed
    params = jax.tree.map(lambda leaf: np.zeros(leaf.shape, leaf.dtype), shapes)
    path = save_checkpoint(params, tmp_path, 1)
    vocab = str(pretrained / "vocab" / "spm.model")
    argv = ["--smoke", "--model-dir", str(tmp_path / "run"), "--vocab", vocab, "--no-progress"]
    with pytest.raises(ValueError, match="--init-checkpoint"):
        script.main([*argv, "--init-checkpoint", path])
    with pytest.raises(ValueError, match="--teacher-checkpoint"):
        script.main([*argv, "--teacher-checkpoint", path, "--distill", "forward_kl"])


@pytest.mark.parametrize(
    "extra",
    [
        ["--distill", "on_policy"],  # no teacher
        ["--teacher-checkpoint", "/x", "--distill", "on_policy", "--vocab", "v", "--pack"],
        ["--init-checkpoint", "/x"],  # no --vocab
        ["--objective", "span_corruption", "--eval-quality", "5"],
    ],
)
def test_flag_combinations_that_cannot_work_stop_at_parsing(script, extra):
    with pytest.raises(SystemExit):
        script.parse_args(["--smoke", "--model-dir", "/tmp/never", *extra])
