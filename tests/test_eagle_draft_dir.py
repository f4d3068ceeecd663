"""scripts/train_eagle.py --shards --smoke end to end, and the registry's ``smollm2-eagle``.

Shards of the tiny character-tokenizer target's own answers (two categories, both splits) ->
train_eagle.py writes bfloat16 weights, a config and metrics with alpha by category -> the
registry loads them for that target, the app's decoder reads the target's features, and its
greedy tokens equal the target's alone. Without weights the error names the build command.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from spec_decode.app import generation, registry
from spec_decode.cli import build_parser
from spec_decode.core.sampling import SamplingConfig
from spec_decode.distill import draft_data
from spec_decode.distill.char_tokenizer import tiny_chat_target
from spec_decode.distill.requests import Request
from spec_decode.distill.responses import ResponseConfig, respond
from spec_decode.drafts import EagleDraft

ROOT = pathlib.Path(__file__).resolve().parents[1]
WORDS = ("apple", "river", "stone", "cloud", "lamp", "bread", "glass", "tiger")
# Quicker XLA:CPU compiles for a subprocess of tiny models (the numbers do not matter here).
FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def _requests() -> list[Request]:
    rows = []
    for i, word in enumerate(WORDS * 3):
        category = "facts" if i % 2 else "code_write"
        split = "held_out" if i >= 20 else "train"
        rows.append(Request(f"Tell me about {word} {i}.", category, "p", f"g{i}", str(i), split))
    return rows


def _smoke_target():
    model, params, tokenizer = tiny_chat_target()
    return registry.Target("smoke", model, params, tokenizer, chat=True)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    shards, out = tmp_path_factory.mktemp("shards"), tmp_path_factory.mktemp("eagle")
    model, params, tokenizer = tiny_chat_target()
    config = ResponseConfig(temperatures=(0.0,), new_tokens=16, widths=(64,), batch=32)
    draft_data.write_shards(
        shards, _requests(), lambda part, first: respond(model, params, tokenizer, part, config,
                                                         first),
        {"test": 1}, 12, progress=False,
    )  # fmt: skip
    argv = ["--shards", str(shards), "--out", str(out), "--smoke", "--steps", "8",
            "--no-progress"]  # fmt: skip
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT), XLA_FLAGS=FAST_COMPILE)
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_eagle.py"), *argv],
                         env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return out


def test_train_eagle_writes_small_bfloat16_weights_a_config_and_metrics(trained):
    config = json.loads((trained / "config.json").read_text())
    assert config["num_layers"] == 1 and config["steps"] == 8
    assert (trained / "weights.npz").stat().st_size <= 16 * 2**20
    with np.load(trained / "weights.npz") as data:
        assert {"fc/kernel", "final_norm/scale"} <= set(data.files)
        assert all(data[k].dtype == np.uint16 for k in data.files)  # bfloat16 bit patterns


def test_metrics_hold_alpha_by_category_at_both_temperatures(trained):
    alpha = json.loads((trained / "metrics.json").read_text())["alpha"]
    assert set(alpha) == {"held_out T=0", "held_out T=1", "demo T=0", "demo T=1"}
    for name, report in alpha.items():
        categories = report["by_category"]
        want = {"facts", "code_write"} if name.startswith("held_out") else {"demo"}
        assert set(categories) == want, name
        for counts in [report["all"], *categories.values()]:
            assert 0.0 <= counts["alpha"] <= 1.0 and counts["examined"] > 0, (name, counts)
        # "all" is the sums over the categories, not a mean of their alphas
        for key in ("prompts", "accepted", "examined", "generated_tokens"):
            assert report["all"][key] == sum(c[key] for c in categories.values()), key


def test_registry_eagle_decodes_greedy_equal_to_the_target_alone(trained):
    target = _smoke_target()
    draft, _ = registry.load_draft("smollm2-eagle", target, directory=trained)
    assert isinstance(draft, EagleDraft)
    common = dict(sampling=SamplingConfig(temperature=0.0), max_new_tokens=20)
    options = generation.GenerateOptions(draft="smollm2-eagle", draft_dir=str(trained), **common)
    decoder, params = generation.make_decoder(options, target)
    assert decoder.reads_features  # the app's decoder calls the target's extend_features
    plain, plain_params = generation.make_decoder(
        generation.GenerateOptions(mode="autoregressive", **common), target
    )
    ids = [target.encode_prompt(p) for p in ("What is a river?", "Name three colours.")]
    batch = generation.make_batch([(x, jax.random.key(0)) for x in ids], 24, 0)
    out = decoder.run(params, batch.tokens, batch.lengths, batch.keys)
    ref = plain.run(plain_params, batch.tokens, batch.lengths, batch.keys)
    np.testing.assert_array_equal(np.asarray(out.tokens), np.asarray(ref.tokens))
    assert out.summary()["alpha"] is not None


def test_missing_weights_name_the_command_that_builds_them(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"smollm2-eagle.*scripts/train_eagle.py --shards"):
        registry.load_draft("smollm2-eagle", _smoke_target(), directory=tmp_path)


def test_cli_takes_the_eagle_draft_and_its_directory(tmp_path):
    args = build_parser().parse_args(
        ["generate", "--prompt", "hi", "--draft", "smollm2-eagle", "--draft-dir", str(tmp_path)]
    )
    assert (args.draft, args.draft_dir) == ("smollm2-eagle", str(tmp_path))
    demo = build_parser().parse_args(["demo", "--draft", "smollm2-eagle", "--draft-dir", "d"])
    assert (demo.draft, demo.draft_dir) == ("smollm2-eagle", "d")


def test_saved_weights_load_beside_a_fused_target_and_a_canonical_one(tmp_path):
    """A GPU run trains beside the fused target (qkv, gate_up); the file is canonical, and
    either layout loads it to the same draft logits."""
    from spec_decode.distill.eagle_checkpoint import load_eagle, save_eagle
    from spec_decode.drafts import eagle_config, init_eagle
    from spec_decode.models import tiny_llama

    model, params = tiny_llama(2, seed=0, vocab_size=64, max_length=32)
    fused, fused_params = model.fused, model.fused.fuse_params(params)
    draft = EagleDraft(eagle_config(fused.config, 1, param_dtype="float32"))
    trained = init_eagle(draft, fused_params, jax.random.key(0), from_target=False)
    save_eagle(draft, trained, tmp_path, {})
    tokens = jax.random.randint(jax.random.key(1), (2, 6), 0, 64)
    features = jax.random.normal(jax.random.key(2), (2, 6, model.config.emb_dim))
    logits = []
    for target, target_params in ((fused, fused_params), (model, params)):
        loaded, loaded_params = load_eagle(target, target_params, tmp_path)
        assert loaded.config.fused_projections == target.config.fused_projections
        logits.append(loaded.forward_conditioned(loaded_params, tokens, features)[0])
    np.testing.assert_allclose(logits[0], logits[1], rtol=1e-5, atol=1e-5)
    reference = draft.forward_conditioned(trained, tokens, features)[0]  # float32, unrounded
    np.testing.assert_allclose(logits[1], reference, rtol=0.05, atol=0.05)  # bfloat16 on disk
    other, other_params = tiny_llama(1, seed=0, vocab_size=64, max_length=32, emb_dim=16)
    with pytest.raises(ValueError, match="emb_dim="):
        load_eagle(other, other_params, tmp_path)
