"""spec_decode: exact speculative decoding for JAX/Flax (Leviathan, Kalman, Matias, ICML 2023)."""

from setuptools import find_namespace_packages, find_packages, setup

EXTRAS = {
    # T5X checkpoints (legacy tensorstore/zarr and Orbax OCDBT) and gin configs.
    "t5x": [
        "tensorstore>=0.1.60",
        "orbax-checkpoint>=0.11",
        "msgpack>=1.0",
        "gin-config>=0.5",
        "sentencepiece>=0.2",
    ],
    # SmolLM2 from its GGUF file: reading, dequantising and the tokenizer.
    "smollm2": ["gguf>=0.10", "tokenizers>=0.19", "jinja2>=3.0"],
    # Independent references for parity tests (CPU torch; a looser pin pulls a CUDA build).
    "reference": ["torch==2.13.0", "transformers>=4.45", "accelerate>=0.30", "sentencepiece>=0.2"],
    # seqio Tasks over your own files (spec_decode.t5x_compat.seqio_tasks). tensorflow-text needs
    # the plain `tensorflow` wheel (CPU on Linux without its [and-cuda] extra); it pins the minor
    # version.
    "seqio": ["seqio>=0.0.20", "tensorflow>=2.21,<2.22", "tensorflow-text>=2.21,<2.22"],
    "bench": ["matplotlib>=3.7"],
    # The paper's quality scores (spec_decode.train.metrics): BLEU and ROUGE.
    "paper": ["sacrebleu>=2.3", "rouge-score>=0.1.2"],
    # spec_decode.data: reading apt's lz4 Translation lists (the `lz4` command also works).
    "data": ["lz4>=4.0"],
    "test": [
        "pytest>=8",
        "scipy>=1.10",
        "ruff>=0.5",
        "nbclient>=0.10",
        "ipykernel>=6",
        "hypothesis>=6.100",
    ],
}
EXTRAS["all"] = sorted({req for reqs in EXTRAS.values() for req in reqs})
# The top-level configs/ (gin files) is installed as the package spec_decode.configs.
CONFIG_PACKAGES = ["spec_decode.configs"] + [
    f"spec_decode.configs.{name}"
    for name in find_namespace_packages(where="configs", exclude=["__pycache__*"])
]

# The data folders under spec_decode/assets/ are packages too (setuptools installs only files of
# listed packages, and warns about importable folders that are not listed).
ASSET_PACKAGES = ["spec_decode.assets"] + [
    f"spec_decode.assets.{name}"
    for name in find_namespace_packages(where="spec_decode/assets", exclude=["__pycache__*"])
]

setup(
    name="spec_decode",
    version="0.1.0",
    description="Exact speculative decoding for JAX/Flax, T5X-compatible",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(include=["spec_decode", "spec_decode.*"])
    + ASSET_PACKAGES
    + CONFIG_PACKAGES,
    package_dir={"spec_decode.configs": "configs"},
    package_data={
        **{name: ["*.json", "*.npz"] for name in ASSET_PACKAGES},
        "spec_decode.configs": ["**/*.gin"],
    },
    include_package_data=True,
    python_requires=">=3.10",
    install_requires=["jax>=0.4.30", "flax>=0.10", "numpy>=1.24", "optax>=0.2", "tqdm>=4.60"],
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["spec-decode=spec_decode.cli:main"]},
)
