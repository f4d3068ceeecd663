"""Parity with real T5X: checkpoints and outputs written by T5X itself (no t5x installed here).

The fixture (``shared/fixtures/t5x_tiny``, see its README) holds a tiny T5 1.1 saved by T5X in
both checkpoint formats and T5X's encoder outputs, teacher-forced logits, greedy decodes and
``score_batch`` on fixed inputs. In CI (``CI=true``) a missing fixture fails instead of skipping.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_decode.core.contract import rollback
from spec_decode.formats.t5x import load_t5x_checkpoint
from spec_decode.formats.t5x.tree import flatten
from spec_decode.models.t5 import T5Config, T5Decoding, make_t5_inputs, score_batch

EOS_ID = 1
extend = jax.jit(T5Decoding.extend, static_argnums=0)
init_cache = jax.jit(T5Decoding.init_cache, static_argnums=(0, 2, 3))
_REPO = Path(__file__).resolve().parents[1]
_CANDIDATES = [
    os.environ.get("SPEC_DECODE_T5X_FIXTURES", ""),
    _REPO / "tests" / "fixtures" / "t5x_tiny",
    _REPO.parent / "shared" / "fixtures" / "t5x_tiny",
]


@functools.cache
def fixture_dir() -> Path:
    for candidate in _CANDIDATES:
        if candidate and (Path(candidate) / "reference_outputs.npz").is_file():
            return Path(candidate)
    message = f"T5X fixtures not found in any of {[str(c) for c in _CANDIDATES if c]}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: the parity tests must run)")
    pytest.skip(message)


@functools.cache
def fixture():
    """(model, T5X's outputs, params from the legacy checkpoint)."""
    root = fixture_dir()
    spec = json.loads((root / "config.json").read_text())["config"]
    config = T5Config(
        vocab_size=spec["vocab_size"],
        dtype=spec["activation_dtype"],
        emb_dim=spec["emb_dim"],
        num_heads=spec["num_heads"],
        num_encoder_layers=spec["num_encoder_layers"],
        num_decoder_layers=spec["num_decoder_layers"],
        head_dim=spec["head_dim"],
        mlp_dim=spec["mlp_dim"],
        mlp_activations=tuple(spec["mlp_activations"]),
        logits_via_embedding=spec["logits_via_embedding"],
        dropout_rate=0.0,
    )
    outputs = dict(np.load(root / "reference_outputs.npz"))
    params = load_t5x_checkpoint(root / "checkpoint_legacy" / "checkpoint_0")["target"]
    return T5Decoding(config), outputs, params


def assert_close(actual, desired, rel=1e-5):
    """Max error relative to the largest reference value, float32 parity."""
    actual, desired = np.asarray(actual, np.float64), np.asarray(desired, np.float64)
    assert actual.shape == desired.shape
    error = np.max(np.abs(actual - desired)) / np.max(np.abs(desired))
    assert error <= rel, f"relative error {error:.2e} > {rel:.0e}"


def test_both_formats_hold_the_same_params_in_t5x_shapes():
    model, _, params = fixture()
    root = fixture_dir()
    orbax = load_t5x_checkpoint(root / "checkpoint_orbax" / "checkpoint_0")
    legacy_flat, orbax_flat = flatten(params), flatten(orbax["target"])
    assert legacy_flat.keys() == orbax_flat.keys()
    for key, value in legacy_flat.items():
        np.testing.assert_array_equal(value, orbax_flat[key], err_msg="/".join(key))
    shapes = json.loads((root / "config.json").read_text())["param_shapes"]
    assert {"/".join(k): list(v.shape) for k, v in legacy_flat.items()} == shapes
    # The model's own tree is what the checkpoints hold: loading against it passes.
    expected = jax.eval_shape(model.init, jax.random.key(0))
    load_t5x_checkpoint(root / "checkpoint_orbax", expected=expected)


def test_encoder_and_teacher_forced_logits_match_t5x():
    model, ref, params = fixture()
    inputs = make_t5_inputs(params, ref["encoder_input_tokens"])
    encoded = jax.jit(
        lambda p: model.module.apply(
            {"params": p.params}, p.encoder_input_tokens, enable_dropout=False, method="encode"
        )
    )(inputs)
    assert_close(encoded, ref["encoded"])
    logits = jax.jit(T5Decoding.forward, static_argnums=0)(
        model,
        inputs,
        ref["decoder_input_tokens"],
        decoder_target_tokens=ref["decoder_target_tokens"],
    )
    assert_close(logits, ref["logits"])


def test_cached_decoding_matches_t5x_logits():
    """All 8 decoder tokens in one extend, and 3 + 5 after a rollback, give T5X's logits."""
    model, ref, params = fixture()
    inputs = make_t5_inputs(params, ref["encoder_input_tokens"])
    cache = init_cache(model, inputs, 3, 8)
    tokens = jnp.asarray(ref["decoder_input_tokens"])
    logits, cache = extend(model, inputs, tokens, cache)
    assert_close(logits, ref["logits"])
    cache = rollback(cache, jnp.full((3,), 3, jnp.int32))
    tail, _ = extend(model, inputs, tokens[:, 3:], cache)
    assert_close(tail, ref["logits"][:, 3:])


def greedy_decode(model, inputs, batch, max_length):
    """Plain Python-loop greedy decoding: BOS 0, argmax, stop at EOS, zeros after it."""
    cache = init_cache(model, inputs, batch, max_length)
    token = jnp.zeros((batch, 1), jnp.int32)
    done = np.zeros(batch, bool)
    decodes = np.zeros((batch, max_length), np.int32)
    for step in range(max_length):
        logits, cache = extend(model, inputs, token, cache)
        next_token = np.asarray(jnp.argmax(logits[:, -1], axis=-1))
        decodes[:, step] = np.where(done, 0, next_token)
        done |= next_token == EOS_ID
        token = jnp.asarray(next_token[:, None], jnp.int32)
    return decodes


def test_greedy_decoding_reproduces_t5x_greedy_decodes():
    model, ref, params = fixture()
    inputs = make_t5_inputs(params, ref["encoder_input_tokens"])
    decodes = greedy_decode(model, inputs, 3, ref["greedy_decodes"].shape[1])
    np.testing.assert_array_equal(decodes, ref["greedy_decodes"])


def test_score_batch_matches_t5x():
    model, ref, params = fixture()
    batch = {
        key: ref[key]
        for key in ("encoder_input_tokens", "decoder_input_tokens", "decoder_target_tokens")
    }
    scores = jax.jit(functools.partial(score_batch, model.config))(params, batch)
    assert_close(scores, ref["score_batch"])
