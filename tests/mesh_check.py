"""Sharded decoding on 8 host CPU devices equals decoding on one (run by test_sharding.py).

    XLA_FLAGS=--xla_force_host_platform_device_count=8 JAX_PLATFORMS=cpu \
        python tests/mesh_check.py llama        # or t5

Its own process because the device count is fixed when JAX starts. For each mesh
(data, model) in (1, 8), (2, 4), (8, 1) it checks that every parameter array is split as the
standard rules say (addressable shard shapes, from a table written here independently of
``spec_decode.sharding``), that the compiled decoder takes the params in the layout they have
and gathers no weight, that the result rows stay split over 'data', and that the tokens equal
the single-device ones exactly, greedy and sampled with the same key. Exits non-zero on failure.

Float sums split across devices may round differently, which could flip a sampled token drawn
right at a boundary; with these seeds none does (a flip would fail loudly here).
"""

from __future__ import annotations

import json
import sys
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from spec_decode import SamplingConfig, autoregressive_decode, sharding, speculative_decode
from spec_decode.bench.hlo import weight_gathers
from spec_decode.core.decoder import DecoderParams, SpeculativeDecoder

MESHES = ((1, 8), (2, 4), (8, 1))
# The logical names STANDARD_RULES puts on 'model' (every other parameter name is replicated).
ON_MODEL = {"vocab", "mlp", "heads", "joined_kv"}
BATCH = 8
GREEDY = SamplingConfig(temperature=0.0)
SAMPLED = SamplingConfig(temperature=1.0)


def expected_shard_shape(shape, logical, model_size):
    out, model_used = [], False
    for size, name in zip(shape, logical, strict=True):
        split = name in ON_MODEL and size % model_size == 0 and not model_used
        model_used |= split
        out.append(size // model_size if split else size)
    return tuple(out)


def check_placement(params, logical_axes, mesh, sharded: bool) -> int:
    """Every array's local shard has the expected shape; returns how many arrays are split."""
    model_size = mesh.shape["model"]
    split = 0
    flat_axes = jax.tree.leaves(logical_axes, is_leaf=lambda x: isinstance(x, PartitionSpec))
    for (path, leaf), logical in zip(
        jax.tree_util.tree_leaves_with_path(params), flat_axes, strict=True
    ):
        want = expected_shard_shape(leaf.shape, tuple(logical), model_size if sharded else 1)
        shards = leaf.addressable_shards
        assert len(shards) == len(mesh.devices.flat), jax.tree_util.keystr(path)
        for shard in shards:
            assert shard.data.shape == want, (jax.tree_util.keystr(path), shard.data.shape, want)
        split += want != leaf.shape
    return split


def check_compiled(compiled, params, arg_index: int) -> None:
    """The executable wants the params where they are (no re-layout on entry), gathers none.

    ``arg_index`` picks the model in the loop's first argument, ``DecoderParams``: 0 the
    target's params, 1 the draft's.
    """
    wanted = jax.tree.leaves(compiled.input_shardings[0][0][arg_index])
    for leaf, sharding_in in zip(jax.tree.leaves(params), wanted, strict=True):
        assert sharding_in.is_equivalent_to(leaf.sharding, leaf.ndim), (sharding_in, leaf.sharding)
    weights = getattr(params, "params", params)  # T5DecodeParams: the weights, not the tokens
    gathers = weight_gathers(compiled.as_text(), weights)
    assert not gathers, gathers


def check_rows_on_data(result, mesh) -> None:
    rows = NamedSharding(mesh, PartitionSpec("data"))
    for array in (result.tokens, result.lengths, result.accepted_per_round):
        assert array.sharding.is_equivalent_to(rows, array.ndim), array.sharding


def check_gather_detector(mesh) -> None:
    """A positive control: replicating a model-split weight is an all-gather that is found."""
    weight = jax.device_put(jnp.ones((40, 128)), NamedSharding(mesh, PartitionSpec(None, "model")))
    gather = jax.jit(lambda w: w * 2, out_shardings=NamedSharding(mesh, PartitionSpec()))
    text = gather.lower(weight).compile().as_text()
    assert weight_gathers(text, {"w": weight}), "weight_gathers missed a gather"


def llama_family():
    from spec_decode.models import LlamaConfig, LlamaLM

    def make(layers, dim, kv_heads, head_dim, seed):
        config = LlamaConfig(
            vocab_size=128, num_layers=layers, emb_dim=dim, num_heads=8, num_kv_heads=kv_heads,
            head_dim=head_dim, mlp_dim=3 * dim, max_length=64,
        )  # fmt: skip
        model = LlamaLM(config)
        return model, model.init(jax.random.key(seed))

    # GQA: 4 key/value heads do not split 8 ways, so on (1, 8) those kernels stay whole.
    target, target_params = make(2, 40, 4, 6, 0)
    draft, draft_params = make(1, 24, 8, 4, 1)
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 7, size=BATCH)
    prompts = np.zeros((BATCH, 6), np.int32)
    for row, n in enumerate(lengths):
        prompts[row, :n] = rng.integers(2, 128, size=n)

    def inputs(params, mesh):
        return params  # a decoder-only model reads only its weights

    return dict(
        target=target, target_params=target_params, draft=draft, draft_params=draft_params,
        prompts=prompts, lengths=lengths, inputs=inputs, speculative=SAMPLED, plain=GREEDY,
        max_new_tokens=16,
    )  # fmt: skip


def t5_family():
    from spec_decode.models.t5 import T5Config, T5Decoding, make_t5_inputs

    config = T5Config(
        vocab_size=128, emb_dim=40, num_heads=8, num_encoder_layers=1, num_decoder_layers=2,
        head_dim=6, mlp_dim=88, mlp_activations=("gelu", "linear"), dropout_rate=0.0,
    )  # fmt: skip
    target = draft = T5Decoding(config)
    init = jax.jit(target.init)
    target_params = init(jax.random.key(0))
    # A noisy copy of the target: a draft that agrees with it often but not always.
    mix = jax.jit(lambda a, b: jax.tree.map(lambda x, y: 0.98 * x + 0.2 * y, a, b))
    draft_params = mix(target_params, init(jax.random.key(1)))
    rng = np.random.default_rng(1)
    encoder_tokens = rng.integers(2, 128, size=(BATCH, 7)).astype(np.int32)
    encoder_tokens[1, 4:] = 0
    encoder_tokens[5, 2:] = 0

    def inputs(params, mesh):
        tokens = encoder_tokens if mesh is None else sharding.shard_batch(encoder_tokens, mesh)
        return make_t5_inputs(params, tokens)

    return dict(
        target=target, target_params=target_params, draft=draft, draft_params=draft_params,
        prompts=np.zeros((BATCH, 1), np.int32), lengths=np.ones(BATCH, np.int32), inputs=inputs,
        speculative=GREEDY, plain=SAMPLED, max_new_tokens=12,
    )  # fmt: skip


def main(family_name: str) -> dict:
    assert jax.device_count() == 8, "run with XLA_FLAGS=--xla_force_host_platform_device_count=8"
    start = time.perf_counter()
    f = {"llama": llama_family, "t5": t5_family}[family_name]()
    target, draft, inputs = f["target"], f["draft"], f["inputs"]
    prompts, lengths, key = jnp.asarray(f["prompts"]), jnp.asarray(f["lengths"]), jax.random.key(7)
    spec_kw = dict(gamma=3, max_new_tokens=f["max_new_tokens"], sampling=f["speculative"])
    plain_kw = dict(max_new_tokens=f["max_new_tokens"], sampling=f["plain"])
    target_one, draft_one = inputs(f["target_params"], None), inputs(f["draft_params"], None)
    want_spec = speculative_decode(
        target, target_one, draft, draft_one, prompts, lengths, key, **spec_kw
    )
    want_plain = autoregressive_decode(target, target_one, prompts, lengths, key, **plain_kw)
    report = {"family": family_name, "accepted": want_spec.summary()["accepted_tokens"]}
    report["references done at s"] = round(time.perf_counter() - start, 1)
    check_gather_detector(sharding.make_mesh(1, 8))

    for data, model in MESHES:
        mesh = sharding.make_mesh(data, model)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            target_params = sharding.shard_params(f["target_params"], target.logical_axes(), mesh)
        shard_draft = data == 2  # the draft replicated on two meshes, split like the target on one
        draft_on_mesh, draft_params = sharding.place_draft(
            draft, f["draft_params"], mesh, shard_draft=shard_draft
        )
        assert isinstance(draft_on_mesh, sharding.Replicated) != shard_draft
        report[f"{data}x{model} split arrays"] = check_placement(
            target_params, target.logical_axes(), mesh, sharded=True
        )
        check_placement(draft_params, draft.logical_axes(), mesh, sharded=shard_draft)
        if family_name == "llama" and model == 8:
            assert any("['key']['kernel']" in str(w.message) for w in caught), caught

        target_in, draft_in = inputs(target_params, mesh), inputs(draft_params, mesh)
        batch_prompts = sharding.shard_batch(prompts, mesh)
        statics = dict(mesh=mesh, rules=sharding.STANDARD_RULES)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the GQA fallback again, for the caches
            compiled = (
                SpeculativeDecoder(target, draft_on_mesh, **spec_kw, **statics)
                .lower(DecoderParams(target_in, draft_in), batch_prompts, lengths, key)
                .compile()
            )
            check_compiled(compiled, target_in, 0)
            check_compiled(compiled, draft_in, 1)
            got = speculative_decode(
                target, target_in, draft_on_mesh, draft_in, batch_prompts, lengths, key, mesh=mesh,
                **spec_kw,
            )  # fmt: skip
            compiled = (
                SpeculativeDecoder(target, **plain_kw, **statics)
                .lower(DecoderParams(target_in), batch_prompts, lengths, key)
                .compile()
            )
            check_compiled(compiled, target_in, 0)
            got_plain = autoregressive_decode(
                target, target_in, batch_prompts, lengths, key, mesh=mesh, **plain_kw
            )
        pairs = (("speculative", got, want_spec), ("plain", got_plain, want_plain))
        for name, result, want in pairs:
            np.testing.assert_array_equal(result.tokens, want.tokens, err_msg=f"{name} {mesh}")
            np.testing.assert_array_equal(result.lengths, want.lengths)
            np.testing.assert_array_equal(result.accepted_per_round, want.accepted_per_round)
            check_rows_on_data(result, mesh)
        report[f"{data}x{model} done at s"] = round(time.perf_counter() - start, 1)
    report["seconds"] = round(time.perf_counter() - start, 1)
    return report


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
