"""The shipped gin configs: every file parses and builds its models, with T5X's T5 1.1 sizes and
the paper's pairs. Models are built abstractly (``jax.eval_shape``): no XXL weight exists."""

from __future__ import annotations

import pathlib

import gin
import jax
import numpy as np
import pytest

from spec_decode.models.t5 import T5Config, T5Decoding, Transformer
from spec_decode.t5x_compat import SpeculativeEncoderDecoderModel, gin_support

# T5X's t5_1_1/*.gin: emb_dim, num_heads, layers (encoder = decoder), mlp_dim; and the size in
# parameters (the paper's small / base / large; T5's published XL and XXL).
SIZES = {
    "small": (512, 6, 8, 1024, 77e6),
    "base": (768, 12, 12, 2048, 250e6),
    "large": (1024, 16, 24, 2816, 800e6),
    "xl": (2048, 32, 24, 5120, 3e9),
    "xxl": (4096, 64, 24, 10240, 11e9),
}
# The paper's Table 2 (WMT EnDe): gamma at temperature 0 and 1 for an XXL target.
PAIRS = {"small": (7, 7), "base": (7, 5), "large": (7, 3)}
REQUIRED = [
    "TARGET_CHECKPOINT_PATH = '/ckpt/target'",
    "DRAFT_CHECKPOINT_PATH = '/ckpt/draft'",
    "INFER_OUTPUT_DIR = '/tmp/unused'",
]


@pytest.fixture(autouse=True)
def clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


def size_config(size: str) -> T5Config:
    """Parse the size's file and build the T5Config its macro names (through Transformer)."""
    gin_support.parse_gin([f"t5_1_1/{size}.gin"], finalize=False)
    gin.parse_config(
        "from __gin__ import dynamic_registration\n"
        "from spec_decode import t5\n"
        f"t5.Transformer.config = %T5_1_1_{size.upper()}\n"
    )
    return gin.get_configurable(Transformer)().config


def num_params(tree) -> int:
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


def test_every_shipped_config_parses():
    files = gin_support.config_files()
    assert {"runs/infer_speculative.gin", "t5_1_1/xxl.gin", "pairs/xxl_large_t1.gin",
            "paper/reproduce.gin", "paper/first_run.gin"} <= set(files)  # fmt: skip
    assert len(files) == 5 + 6 + 1 + 4  # sizes, pairs, runs, the paper's reproduction
    for name in files:
        gin.clear_config()
        gin_support.parse_gin([name], finalize=False)


@pytest.mark.parametrize("size", list(SIZES))
def test_t5_1_1_sizes_have_t5x_dimensions(size):
    emb_dim, heads, layers, mlp_dim, count = SIZES[size]
    config = size_config(size)
    assert config == T5Config(
        vocab_size=32128, dtype="bfloat16", emb_dim=emb_dim, num_heads=heads,
        num_encoder_layers=layers, num_decoder_layers=layers, head_dim=64, mlp_dim=mlp_dim,
        mlp_activations=("gelu", "linear"), dropout_rate=0.0, logits_via_embedding=False,
    )  # fmt: skip
    shapes = jax.eval_shape(T5Decoding(config).init, jax.random.key(0))
    assert abs(num_params(shapes) / count - 1) < 0.06, num_params(shapes)


def build(run_bindings=(), pair="pairs/xxl_small.gin"):
    gin_support.parse_gin(["runs/infer_speculative.gin", pair], [*REQUIRED, *run_bindings])
    return gin.get_configurable(SpeculativeEncoderDecoderModel)()


@pytest.mark.parametrize("draft", list(PAIRS))
@pytest.mark.parametrize("temperature", [0, 1])
def test_pairs_build_the_papers_models_and_gamma(draft, temperature):
    suffix = "_t1" if temperature else ""
    model = build(pair=f"pairs/xxl_{draft}{suffix}.gin")
    assert model.target_model.config.emb_dim == 4096
    assert model.target_model.config.num_decoder_layers == 24
    assert model.draft_model.config.emb_dim == SIZES[draft][0]
    assert model.gamma == PAIRS[draft][temperature]
    assert gin.query_parameter("%TEMPERATURE") == float(temperature)
    assert gin.query_parameter("%GAMMA") == model.gamma


def test_run_file_builds_the_joint_params_tree_abstractly():
    """XXL target and small draft: {'target', 'draft'} params and axes, never materialised."""
    model = build(["ACTIVATION_DTYPE = 'float32'"])
    assert model.target_model.config.dtype == "float32"
    shapes = {"encoder_input_tokens": (1, 8), "decoder_input_tokens": (1, 8)}
    variables = jax.eval_shape(
        lambda key: model.get_initial_variables(key, shapes), jax.random.key(0)
    )
    assert abs(num_params(variables["params"]["target"]) / 11e9 - 1) < 0.05
    assert abs(num_params(variables["params"]["draft"]) / 77e6 - 1) < 0.05
    assert set(variables["params_axes"]) == {"target", "draft"}


def test_run_file_requires_its_macros():
    """Unset %gin.REQUIRED macros fail when the config is finalized, naming the macro."""
    with pytest.raises(ValueError, match="TARGET_CHECKPOINT_PATH"):
        gin_support.parse_gin(["runs/infer_speculative.gin", "pairs/xxl_base.gin"])
    gin.clear_config()
    # Parsed after the pair, the run file's GAMMA = %gin.REQUIRED wins: the order matters.
    with pytest.raises(ValueError, match="GAMMA"):
        gin_support.parse_gin(["pairs/xxl_base.gin", "runs/infer_speculative.gin"], REQUIRED)
    gin.clear_config()
    gin_support.parse_gin(["runs/infer_speculative.gin", "pairs/xxl_base.gin"], REQUIRED)


def test_includes_resolve_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.gin").write_text("include 'pairs/xxl_large.gin'\nGAMMA = 2\n")
    gin_support.parse_gin(["mine.gin"], finalize=False)
    assert gin.query_parameter("%GAMMA") == 2
    assert gin_support.configs_dir().joinpath("t5_1_1", "base.gin").is_file()
    with pytest.raises(FileNotFoundError, match="shipped configs"):
        gin_support.parse_gin(["pairs/no_such_pair.gin"])


def test_t5x_style_flags():
    rewrite = gin_support.rewrite_gin_args
    assert rewrite(["--gin.GAMMA=3", "--gin_file=a.gin", "--gin.X", "'y'"]) == [
        "--gin_bindings=GAMMA = 3",
        "--gin_file=a.gin",
        "--gin_bindings=X = 'y'",
    ]
    with pytest.raises(ValueError, match="--gin.GAMMA"):
        rewrite(["--gin.GAMMA"])


def test_a_source_checkout_that_is_not_installed_finds_its_configs(monkeypatch):
    """Without the installed package (a copied working tree) the repository's configs/."""
    real_find_spec = gin_support.importlib.util.find_spec
    monkeypatch.setattr(
        gin_support.importlib.util, "find_spec",
        lambda name, *a: None if name == "spec_decode.configs" else real_find_spec(name, *a),
    )  # fmt: skip
    gin_support.configs_dir.cache_clear()
    try:
        found = gin_support.configs_dir()
    finally:
        gin_support.configs_dir.cache_clear()
    assert found == pathlib.Path(gin_support.__file__).resolve().parents[2] / "configs"
    assert (found / "t5_1_1" / "base.gin").is_file()
