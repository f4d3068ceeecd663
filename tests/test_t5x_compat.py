"""T5X's decode interface and model, decoded speculatively: parity with T5X and exactness.

- ``speculative_sample`` greedy, with a random T5 draft or a bigram draft, reproduces the
  greedy decodes T5X wrote into the fixture; ``SpeculativeEncoderDecoderModel`` reproduces them
  through ``predict_batch_with_aux`` and T5X's ``score_batch``.
- On a random T5 pair, speculative greedy equals autoregressive greedy (forced prompts of
  different lengths, EOS mid-sequence).
- On a tiny T5 pair, the joint distribution of two sampled tokens equals autoregressive
  decoding's (two-sample chi-square; power in the test's docstring).
- Without t5x the model stands alone; with a (fake) t5x it subclasses EncoderDecoderModel.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from stats import SIGNIFICANCE, detectable_tv, goodness_of_fit, two_sample
from test_t5x_fixtures import assert_close, fixture

from spec_decode import SamplingConfig, autoregressive_decode
from spec_decode.drafts import BigramDraft, ngram_params_from_tokens
from spec_decode.formats.t5x import save_t5x_checkpoint_legacy, save_t5x_checkpoint_orbax
from spec_decode.models.t5 import T5Config, T5Decoding, Transformer, make_t5_inputs
from spec_decode.t5x_compat import (
    T5X_AVAILABLE,
    SpeculativeEncoderDecoderModel,
    draft_restore_fn,
    speculative_sample,
    t5x_sampling,
)
from spec_decode.t5x_compat.base import StandaloneBase

TINY = dict(emb_dim=16, num_heads=2, head_dim=8, mlp_dim=32, dropout_rate=0.0)
GATED = ("gelu", "linear")


def tiny_t5(vocab_size: int, layers: int = 1) -> T5Decoding:
    return T5Decoding(
        T5Config(
            vocab_size=vocab_size,
            num_encoder_layers=layers,
            num_decoder_layers=layers,
            mlp_activations=GATED,
            **TINY,
        )  # fmt: skip
    )


def random_params(model: T5Decoding, seed: int):
    """Random weights of the model's tree (fan-in scaled kernels, unit norm scales), made
    without tracing ``init``'s initialisers (their compilation costs seconds)."""
    shapes = jax.eval_shape(model.init, jax.random.key(0))
    leaves, treedef = jax.tree.flatten(shapes)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return jax.tree.unflatten(
        treedef,
        [
            jnp.ones(leaf.shape) if leaf.ndim == 1 else
            jax.random.normal(key, leaf.shape) / np.sqrt(leaf.shape[0])
            for leaf, key in zip(leaves, keys, strict=True)
        ],
    )  # fmt: skip


def noisy_copy(params, seed: int, noise: float):
    """The target's weights mixed with a fresh init: a draft that agrees often, not always."""
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    mixed = [
        (1 - noise) * a + noise * jnp.std(a) * jax.random.normal(k, a.shape)
        for a, k in zip(leaves, keys, strict=True)
    ]
    return jax.tree.unflatten(treedef, mixed)


class Vocab:
    eos_id = 1


forward = jax.jit(T5Decoding.forward, static_argnums=0)


@functools.cache
def fixture_draft():
    """A random 1-layer T5 draft for the fixture's target (vocabulary 96)."""
    draft = tiny_t5(96)
    return draft, random_params(draft, seed=3)


@pytest.mark.parametrize("draft_kind", ["t5", "bigram"])
def test_speculative_sample_greedy_reproduces_t5x_greedy_decodes(draft_kind):
    model, ref, params = fixture()
    encoder = jnp.asarray(ref["encoder_input_tokens"])
    if draft_kind == "t5":
        draft, draft_params = fixture_draft()
        draft_params = make_t5_inputs(draft_params, encoder)
    else:  # counts of T5X's own output: most drafts are accepted
        draft = BigramDraft(96)
        draft_params = ngram_params_from_tokens(ref["greedy_decodes"], 96, order=2)
    inputs = jnp.zeros_like(jnp.asarray(ref["decoder_input_tokens"]))  # no prompt, as T5X
    decodes, scores, stats = speculative_sample(
        inputs, None, None, eos_id=1, temperature=0.0, topk=0, gamma=3,
        target=(model, make_t5_inputs(params, encoder)), draft=(draft, draft_params),
        return_statistics=True,
    )  # fmt: skip
    assert decodes.shape == (3, 1, 8) and scores.shape == (3, 1)
    np.testing.assert_array_equal(decodes[:, 0], ref["greedy_decodes"])
    np.testing.assert_array_equal(scores, 0.0)  # T5X: argmax log-probs rescale to 0
    np.testing.assert_array_equal(stats["generated_tokens"], 8)
    if draft_kind == "bigram":
        assert stats["accepted_tokens"].sum() > 0


def fixture_model() -> SpeculativeEncoderDecoderModel:
    model, _, _ = fixture()
    draft, _ = fixture_draft()
    greedy = functools.partial(speculative_sample, temperature=0.0)  # as gin would bind it
    return SpeculativeEncoderDecoderModel(
        Transformer(model.config), Vocab(), Vocab(), decode_fn=greedy, draft=draft.config, gamma=3
    )


def test_model_predict_batch_with_aux_and_score_batch_match_t5x():
    _, ref, params = fixture()
    model = fixture_model()
    assert isinstance(model, StandaloneBase) != T5X_AVAILABLE  # t5x is not on PyPI: standalone
    joint = {"target": params, "draft": fixture_draft()[1]}
    batch = {k: ref[k] for k in ("encoder_input_tokens", "decoder_input_tokens")}
    decodes, aux = model.predict_batch_with_aux(joint, batch)
    np.testing.assert_array_equal(decodes, ref["greedy_decodes"])
    assert set(aux) == {"scores", "accepted_tokens", "examined_drafts", "target_calls",
                        "draft_calls", "generated_tokens"}  # fmt: skip
    assert all(value.shape == (3,) for value in aux.values())
    # T5X calls it inside jit: the prompt is then traced, and the result the same.
    jitted = jax.jit(lambda p, b, r: model.predict_batch_with_aux(p, b, rng=r)[0])
    np.testing.assert_array_equal(jitted(joint, batch, jax.random.PRNGKey(1)), decodes)
    all_decodes, aux = model.predict_batch_with_aux(joint, batch, return_all_decodes=True)
    assert all_decodes.shape == (3, 1, 8) and aux["scores"].shape == (3, 1)

    batch["decoder_target_tokens"] = ref["decoder_target_tokens"]
    assert_close(model.score_batch(joint, batch), ref["score_batch"])
    scores, intermediates = model.score_batch(joint, batch, return_intermediates=True)
    (token_scores,) = intermediates["decoder"]["token_scores"]
    assert_close(token_scores.sum(-1), ref["score_batch"])
    with pytest.raises(ValueError, match="rng and decoder_params"):
        model.predict_batch_with_aux(
            joint, batch, rng=jax.random.PRNGKey(1), decoder_params={"decode_rng": 1}
        )


@functools.cache
def random_pair(vocab_size: int, noise: float):
    """A random T5 target and a draft of its shape: its weights mixed with ``noise`` of new."""
    target = tiny_t5(vocab_size)
    params = random_params(target, seed=0)
    return target, params, noisy_copy(params, seed=1, noise=noise)


def test_t5_speculative_greedy_equals_autoregressive_greedy():
    """Forced prompts of 0, 2 and 4 tokens and an EOS that cuts one row mid-sequence."""
    target, params, draft_params = random_pair(40, 0.2)
    encoder = jax.random.randint(jax.random.key(5), (3, 6), 2, 40).at[0, 4:].set(0)
    length = 10
    inputs = np.zeros((3, length), np.int32)
    inputs[1, 1:3] = [7, 9]
    inputs[2, 1:5] = [3, 4, 5, 6]
    num_prompt = np.array([0, 2, 4])
    bound = make_t5_inputs(params, encoder)

    # The baseline decodes past any EOS; T5X's output stops at the first generated EOS.
    prompt_lengths = jnp.asarray(num_prompt + 1)
    greedy = autoregressive_decode(
        target, bound, jnp.asarray(inputs), prompt_lengths, max_new_tokens=length,
        sampling=SamplingConfig(temperature=0.0),
    )  # fmt: skip
    stream = np.asarray(greedy.tokens)
    eos_id = int(stream[0, 3])  # row 0 ends at its 4th token (or earlier if it repeats)
    expected = np.zeros_like(inputs)
    for row in range(3):
        tokens = list(inputs[row, 1 : 1 + num_prompt[row]])
        for token in stream[row, : length - num_prompt[row]]:
            tokens.append(int(token))
            if token == eos_id:
                break
        expected[row, : len(tokens)] = tokens

    decodes, _, stats = speculative_sample(
        inputs, eos_id=eos_id, temperature=0.0, topk=0, gamma=3, target=(target, bound),
        draft=(target, make_t5_inputs(draft_params, encoder)), return_statistics=True,
    )  # fmt: skip
    np.testing.assert_array_equal(decodes[:, 0], expected)
    assert stats["accepted_tokens"].sum() > 0  # the draft's proposals were used, not only fixed
    assert int(stats["generated_tokens"][0, 0]) <= 4


def test_sampled_tokens_follow_the_target_distribution():
    """Two tokens sampled after a 2-token forced prompt, V = 8 (64 joint cells), N = 20,000.

    speculative_sample (num_decodes = N, one encoder input) against autoregressive_decode (N
    rows): the two-sample chi-square detects a total-variation error of 0.047 with probability
    0.99 at significance 1e-3; against the exact first-token distribution (goodness of fit,
    8 cells) it detects 0.024. The scores are checked to be the target's log-probabilities.
    """
    vocab, n = 8, 20_000
    target, params, draft_params = random_pair(vocab, 0.5)
    encoder = jnp.array([[5, 2, 7, 3, 1]])
    inputs = jnp.array([[0, 3, 5, 0]])  # L = 4: prompt [3, 5], two generated tokens
    decodes, scores, stats = speculative_sample(
        inputs, num_decodes=n, temperature=1.0, topk=0, eos_id=1, gamma=3,
        decode_rng=jax.random.PRNGKey(7), target=(target, make_t5_inputs(params, encoder)),
        draft=(target, make_t5_inputs(draft_params, encoder)), return_statistics=True,
    )  # fmt: skip
    decodes, scores = np.asarray(decodes[0]), np.asarray(scores[0])  # [N, 4], [N]
    np.testing.assert_array_equal(decodes[:, :2], [[3, 5]] * n)
    assert np.all(np.diff(scores) >= 0)  # sorted ascending, the best last
    rate = stats["accepted_tokens"].sum() / stats["target_calls"].sum() / 3
    assert 0.1 < rate < 0.9, rate  # acceptance neither trivial nor rare

    rows = make_t5_inputs(params, jnp.repeat(encoder, n, axis=0))
    baseline = autoregressive_decode(
        target, rows, jnp.tile(inputs[:, :3], (n, 1)), max_new_tokens=2,
        key=jax.random.key(8), sampling=SamplingConfig(temperature=1.0), eos_id=1,
    )  # fmt: skip
    base = np.asarray(baseline.tokens)
    # After EOS the output is 0 (T5X) and the baseline pads with 0 too.
    ours = decodes[:, 2:]
    cells = vocab * vocab
    counts = lambda t: np.bincount(t[:, 0] * vocab + t[:, 1], minlength=cells)
    assert detectable_tv(n, cells - 1, two_sample=True) < 0.05
    assert two_sample(counts(ours), counts(base)) > SIGNIFICANCE

    # One teacher-forced pass over 4 of the decodes gives the exact first-token distribution
    # (position 2 of every row) and their scores: log p(y1) + log p(y2 | y1), y2 not counted
    # after an EOS y1.
    rows = [0, n // 3, n // 2, n - 1]
    picked = decodes[rows]
    bos = np.zeros((4, 1), np.int32)
    logits = forward(
        target, make_t5_inputs(params, jnp.repeat(encoder, 4, axis=0)),
        jnp.asarray(np.concatenate([bos, picked[:, :-1]], axis=1)),
    )  # fmt: skip
    log_probs = np.asarray(jax.nn.log_softmax(logits, axis=-1))
    first = np.exp(log_probs[0, 2])
    assert detectable_tv(n, vocab - 1) < 0.025
    assert goodness_of_fit(np.bincount(ours[:, 0], minlength=vocab), first) > SIGNIFICANCE
    for i, tokens in enumerate(picked):
        stop = 3 if tokens[2] == 1 else 4
        expected = sum(log_probs[i, t, tokens[t]] for t in range(2, stop))
        np.testing.assert_allclose(scores[rows[i]], expected, rtol=1e-4)


def test_t5x_sampling_follows_temperature_sample():
    assert t5x_sampling(0.0, 1, 0.0) == SamplingConfig(temperature=0.0)
    assert t5x_sampling(1e-5, 0, 0.9) == SamplingConfig(temperature=0.0)  # <= 1e-4: argmax
    assert t5x_sampling(0.7) == SamplingConfig(temperature=0.7, top_k=1)  # T5X's topk=1
    assert t5x_sampling(1.0, 0, 0.0) == SamplingConfig(temperature=1.0)
    assert t5x_sampling(1.0, 0, 0.9) == SamplingConfig(temperature=1.0, top_p=0.9)
    for bad, match in [
        (dict(temperature=1.0, topk=5, topp=0.5), "at most one"),
        (dict(temperature=jnp.ones(3)), "temperature"),
        (dict(temperature=-1.0), "temperature"),
        (dict(topk=-1), "topk"),
        (dict(topp=1.5), "topp"),
    ]:
        with pytest.raises(ValueError, match=match):
            t5x_sampling(**bad)


def test_bad_arguments_raise_value_errors():
    model, ref, params = fixture()
    encoder = jnp.asarray(ref["encoder_input_tokens"])
    draft, draft_params = fixture_draft()
    pair = (model, make_t5_inputs(params, encoder))
    ok = dict(target=pair, draft=(draft, make_t5_inputs(draft_params, encoder)))
    inputs = jnp.zeros((3, 8), jnp.int32)
    cases = [
        (dict(inputs=inputs, target=pair), "draft=None"),
        (dict(inputs=inputs, target=(model, params), draft=ok["draft"][1]), "draft="),
        (dict(inputs=jnp.zeros((8,), jnp.int32), **ok), "inputs"),
        (dict(inputs=inputs.at[0, 3].set(5), **ok), "contiguous"),
        (dict(inputs=inputs, eos_id=96, **ok), "eos_id"),
        (dict(inputs=inputs, num_decodes=0, **ok), "num_decodes"),
        (dict(inputs=inputs, gamma=0, **ok), "gamma"),
        (dict(inputs=inputs, max_decode_steps=9, **ok), "max_decode_steps"),
        (dict(inputs=inputs, max_decode_steps=jnp.array(3), **ok), "max_decode_steps"),
        (dict(inputs=inputs, logit_callback_fn=lambda x, s: x, **ok), "callback"),
        (dict(inputs=inputs, topk=2, topp=0.5, **ok), "at most one"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            speculative_sample(**kwargs)

    module = Transformer(model.config)
    with pytest.raises(ValueError, match="draft=None"):
        SpeculativeEncoderDecoderModel(module, Vocab(), Vocab())
    with pytest.raises(ValueError, match="vocab_size"):
        SpeculativeEncoderDecoderModel(module, Vocab(), Vocab(), draft=tiny_t5(40).config)
    with pytest.raises(ValueError, match="gamma"):
        SpeculativeEncoderDecoderModel(module, Vocab(), Vocab(), draft=draft, gamma=0)
    with pytest.raises(ValueError, match="decode_fn"):
        SpeculativeEncoderDecoderModel(
            module, Vocab(), Vocab(), decode_fn=lambda inputs, cache: None, draft=draft
        )
    with pytest.raises(ValueError, match="module"):
        SpeculativeEncoderDecoderModel(object(), Vocab(), Vocab(), draft=draft)
    with pytest.raises(ValueError, match="'target': <target params>"):
        fixture_model().predict_batch_with_aux(params, dict(ref))


def test_params_tree_initial_variables_checkpoints_and_t5x_restore(tmp_path):
    """get_initial_variables, load_params and draft_restore_fn all give {'target', 'draft'}."""
    _, _, params = fixture()
    model = fixture_model()
    draft_params = fixture_draft()[1]
    shapes = {"encoder_input_tokens": (2, 5), "decoder_input_tokens": (2, 4)}
    variables = jax.eval_shape(
        lambda key: model.get_initial_variables(key, shapes), jax.random.key(0)
    )
    assert set(variables) == {"params", "params_axes"}
    assert jax.tree.structure(flax.core.unfreeze(variables["params"])) == jax.tree.structure(
        {"target": params, "draft": draft_params}
    )

    save_t5x_checkpoint_orbax(params, tmp_path / "target" / "checkpoint_0")
    save_t5x_checkpoint_legacy(draft_params, tmp_path / "draft" / "checkpoint_0")
    loaded = model.load_params(tmp_path / "target", tmp_path / "draft")
    for name, tree in (("target", params), ("draft", draft_params)):
        for got, want in zip(jax.tree.leaves(loaded[name]), jax.tree.leaves(tree), strict=True):
            np.testing.assert_array_equal(got, want)

    # In a T5X run: the state read from the target checkpoint gains the draft's params.
    state = {"target": params, "state": {"step": 0, "param_states": {"x": 1}}}
    restored = draft_restore_fn(str(tmp_path / "draft"))(state, None, is_resuming=False)
    assert set(restored["target"]) == {"target", "draft"} and restored["state"] == {"step": 0}
    np.testing.assert_array_equal(
        restored["target"]["draft"]["decoder"]["decoder_norm"]["scale"],
        draft_params["decoder"]["decoder_norm"]["scale"],
    )
    assert draft_restore_fn("unused")(restored, None) == restored  # already nested: unchanged


FAKE_T5X = """
import sys, types
t5x, models = types.ModuleType("t5x"), types.ModuleType("t5x.models")

class EncoderDecoderModel:  # the constructor T5X's EncoderDecoderModel has
    def __init__(self, module, input_vocabulary, output_vocabulary, optimizer_def,
                 decode_fn=None, feature_converter_cls=None, label_smoothing=0.0, z_loss=0.0,
                 loss_normalizing_factor=None, default_decoder_params=None):
        self.module, self.optimizer_def, self._decode_fn = module, optimizer_def, decode_fn
        self._input_vocabulary = self._output_vocabulary = output_vocabulary
        self._default_decoder_params = default_decoder_params
        self.loss_normalizing_factor = loss_normalizing_factor
    decode_fn = property(lambda self: self._decode_fn)
    output_vocabulary = property(lambda self: self._output_vocabulary)

models.EncoderDecoderModel, t5x.models = EncoderDecoderModel, models
sys.modules.update({"t5x": t5x, "t5x.models": models})
"""


def test_subclasses_t5x_encoder_decoder_model_when_t5x_imports():
    """In a subprocess, a stand-in ``t5x.models`` (T5X's constructor) is importable."""
    check = """
        import jax, numpy as np
        from spec_decode.models.t5 import T5Config, Transformer
        from spec_decode.t5x_compat import T5X_AVAILABLE, SpeculativeEncoderDecoderModel
        from t5x.models import EncoderDecoderModel
        assert T5X_AVAILABLE and issubclass(SpeculativeEncoderDecoderModel, EncoderDecoderModel)
        config = T5Config(vocab_size=16, emb_dim=8, num_heads=2, head_dim=4, mlp_dim=8,
                          num_encoder_layers=1, num_decoder_layers=1)
        class Vocab: eos_id = 1
        model = SpeculativeEncoderDecoderModel(
            Transformer(config), Vocab(), Vocab(), None, draft=config, gamma=2,
            loss_normalizing_factor=3.0)
        assert model.gamma == 2 and model.loss_normalizing_factor == 3.0
        shapes = {"encoder_input_tokens": (1, 3), "decoder_input_tokens": (1, 3)}
        params = model.get_initial_variables(jax.random.key(0), shapes)["params"]
        batch = {k: np.ones((1, 3), np.int32) for k in
                 ("encoder_input_tokens", "decoder_input_tokens", "decoder_target_tokens")}
        assert model.score_batch(params, batch).shape == (1,)
        print("subclass ok")
    """
    code = FAKE_T5X + textwrap.dedent(check)
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
        cwd=Path(__file__).parent,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "subclass ok" in done.stdout
