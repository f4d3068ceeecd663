"""T5X checkpoints without t5x: both writers round-trip through the reader, laid out as T5X does,
and every way a checkpoint can be wrong gives an error naming the problem."""

from __future__ import annotations

import json
import os
import shutil

import jax
import ml_dtypes
import numpy as np
import pytest
from flax import serialization

from spec_decode.formats.t5x import (
    check_params_match,
    find_t5x_checkpoint,
    load_t5x_checkpoint,
    save_t5x_checkpoint_legacy,
    save_t5x_checkpoint_orbax,
)
from spec_decode.formats.t5x.legacy import chunk_shape
from spec_decode.formats.t5x.tree import flatten

WRITERS = {"legacy": save_t5x_checkpoint_legacy, "orbax": save_t5x_checkpoint_orbax}


def make_params(seed=0):
    """A small T5X-shaped tree (names as in T5X, random values)."""
    rng = np.random.default_rng(seed)

    def normal(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    return {
        "token_embedder": {"embedding": normal(11, 4)},
        "encoder": {
            "layers_0": {"attention": {"query": {"kernel": normal(4, 6)}}},
            "encoder_norm": {"scale": normal(4)},
        },
        "decoder": {"logits_dense": {"kernel": normal(4, 11)}},
    }


def assert_same_tree(actual, desired):
    actual, desired = flatten(actual), flatten(desired)
    assert actual.keys() == desired.keys()
    for key, value in desired.items():
        np.testing.assert_array_equal(actual[key], value, err_msg="/".join(key))


@pytest.mark.parametrize("fmt", WRITERS)
def test_round_trip(tmp_path, fmt):
    params = make_params()
    # T5X writes bfloat16 targets natively when saving with save_dtype=bfloat16.
    params["decoder"]["logits_dense"]["kernel"] = params["decoder"]["logits_dense"][
        "kernel"
    ].astype(ml_dtypes.bfloat16)
    path = WRITERS[fmt](params, tmp_path / "checkpoint_42", step=42)
    assert find_t5x_checkpoint(path)[0] == fmt
    restored = load_t5x_checkpoint(path)
    assert restored["step"] == 42
    assert_same_tree(restored["target"], params)
    assert restored["target"]["decoder"]["logits_dense"]["kernel"].dtype == ml_dtypes.bfloat16
    as_bf16 = load_t5x_checkpoint(path, restore_dtype="bfloat16")["target"]
    assert as_bf16["encoder"]["encoder_norm"]["scale"].dtype == ml_dtypes.bfloat16
    as_f32 = load_t5x_checkpoint(path, restore_dtype="float32")["target"]
    assert as_f32["decoder"]["logits_dense"]["kernel"].dtype == np.float32


def test_legacy_layout_is_t5x_layout(tmp_path):
    """msgpack {'version': 3, 'optimizer': {'target': specs, 'state': {'step'}}}; zarr dirs."""
    params = make_params()
    path = save_t5x_checkpoint_legacy(params, tmp_path / "checkpoint_3", step=3)
    with open(os.path.join(path, "checkpoint"), "rb") as f:
        contents = serialization.msgpack_restore(f.read())
    assert contents["version"] == 3
    assert int(contents["optimizer"]["state"]["step"]) == 3
    spec = contents["optimizer"]["target"]["encoder"]["layers_0"]["attention"]["query"]["kernel"]
    assert spec["driver"] == "zarr" and spec["dtype"] == "float32"
    assert spec["kvstore"] == {
        "driver": "file",
        "path": "target.encoder.layers_0.attention.query.kernel/",
    }
    assert spec["metadata"]["shape"] == [4, 6]
    with open(os.path.join(path, "target.encoder.layers_0.attention.query.kernel", ".zarray")) as f:
        zarray = json.load(f)
    assert zarray["zarr_format"] == 2 and zarray["compressor"]["id"] == "gzip"
    # Relative paths: the checkpoint still reads after being moved.
    moved = shutil.move(path, tmp_path / "elsewhere")
    assert_same_tree(load_t5x_checkpoint(moved)["target"], params)


@pytest.mark.filterwarnings("ignore:Sharding info not provided")
def test_orbax_checkpoint_is_read_back_by_orbax_itself(tmp_path):
    orbax = pytest.importorskip("orbax.checkpoint")
    params = make_params()
    path = save_t5x_checkpoint_orbax(params, tmp_path / "checkpoint_0")
    assert sorted(os.listdir(path)) == ["_CHECKPOINT_METADATA", "commit_success.txt", "state"]
    restored = orbax.PyTreeCheckpointer().restore(os.path.join(path, "state"))
    assert_same_tree(jax.tree.map(np.asarray, restored["target"]), params)


def test_model_directory_selects_latest_or_given_step(tmp_path):
    save_t5x_checkpoint_legacy(make_params(0), tmp_path / "checkpoint_5", step=5)
    save_t5x_checkpoint_orbax(make_params(1), tmp_path / "checkpoint_10", step=10)
    assert load_t5x_checkpoint(tmp_path)["step"] == 10
    assert_same_tree(load_t5x_checkpoint(tmp_path, step=5)["target"], make_params(0))
    with pytest.raises(ValueError, match="step=7"):
        load_t5x_checkpoint(tmp_path, step=7)


def test_missing_or_non_checkpoint_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_t5x_checkpoint(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="is not a T5X checkpoint"):
        load_t5x_checkpoint(tmp_path)
    with pytest.raises(FileExistsError):
        save_t5x_checkpoint_legacy(make_params(), tmp_path)


def test_corrupt_files_raise_value_errors(tmp_path):
    legacy = save_t5x_checkpoint_legacy(make_params(), tmp_path / "legacy")
    with open(os.path.join(legacy, "checkpoint"), "r+b") as f:
        f.truncate(40)
    with pytest.raises(ValueError, match="corrupt or truncated"):
        load_t5x_checkpoint(legacy)

    orbax = save_t5x_checkpoint_orbax(make_params(), tmp_path / "orbax")
    with open(os.path.join(orbax, "state", "_METADATA"), "w") as f:
        f.write("{not json")
    with pytest.raises(ValueError, match="_METADATA"):
        load_t5x_checkpoint(orbax)


@pytest.mark.parametrize("fmt", WRITERS)
def test_missing_array_data_names_the_leaf(tmp_path, fmt):
    path = WRITERS[fmt](make_params(), tmp_path / "checkpoint_0")
    if fmt == "legacy":
        shutil.rmtree(os.path.join(path, "target.decoder.logits_dense.kernel"))
        leaf = "decoder/logits_dense/kernel"
    else:  # the metadata lists an array the OCDBT store lacks (an incomplete copy)
        metadata_file = os.path.join(path, "state", "_METADATA")
        with open(metadata_file) as f:
            metadata = json.load(f)
        keys = ["target", "decoder", "extra", "kernel"]
        metadata["tree_metadata"][str(tuple(keys))] = {
            "key_metadata": [{"key": key, "key_type": 2} for key in keys],
            "value_metadata": {"value_type": "jax.Array", "skip_deserialize": False},
        }
        with open(metadata_file, "w") as f:
            json.dump(metadata, f)
        leaf = "decoder/extra/kernel"
    with pytest.raises(ValueError, match=f"leaf '{leaf}' of the {fmt} T5X checkpoint"):
        load_t5x_checkpoint(path)


def test_expected_tree_mismatch_names_leaves_and_shapes(tmp_path):
    path = save_t5x_checkpoint_orbax(make_params(), tmp_path / "checkpoint_0")
    expected = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), make_params())
    load_t5x_checkpoint(path, expected=expected)  # the matching tree passes

    expected["decoder"]["logits_dense"]["kernel"] = jax.ShapeDtypeStruct((4, 12), np.float32)
    with pytest.raises(ValueError) as error:
        load_t5x_checkpoint(path, expected=expected)
    assert "'decoder/logits_dense/kernel' has shape (4, 11)" in str(error.value)
    assert "expects (4, 12)" in str(error.value)

    expected = make_params()
    expected["decoder"]["decoder_norm"] = {"scale": np.zeros(4, np.float32)}
    del expected["encoder"]["encoder_norm"]
    with pytest.raises(ValueError) as error:
        check_params_match(expected, make_params())
    assert "missing leaf 'decoder/decoder_norm/scale'" in str(error.value)
    assert "unexpected leaf 'encoder/encoder_norm/scale'" in str(error.value)


def test_bad_restore_dtype(tmp_path):
    path = save_t5x_checkpoint_legacy(make_params(), tmp_path / "checkpoint_0")
    with pytest.raises(ValueError, match="restore_dtype"):
        load_t5x_checkpoint(path, restore_dtype="int32")


def test_chunks_divide_the_array_and_stay_under_64_mib():
    assert chunk_shape((96, 32), 4) == [96, 32]
    for shape in [(32128, 4096), (4096, 10240), (64, 64, 64, 64, 2)]:
        chunks = chunk_shape(shape, 4)
        assert all(size % chunk == 0 for size, chunk in zip(shape, chunks, strict=True))
        assert np.prod(chunks) * 4 <= 64 * 1024 * 1024
