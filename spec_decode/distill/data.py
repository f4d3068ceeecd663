"""Target-generated training text (DistillSpec): the draft learns what the target says."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from spec_decode import SamplingConfig, autoregressive_decode


def chat_prompts(tokenizer, texts) -> tuple[np.ndarray, np.ndarray]:
    """Chat-templated prompts, right-padded: tokens [N, P] and lengths [N]."""
    ids = [tokenizer.chat([{"role": "user", "content": t}]) for t in texts]
    width = max(len(x) for x in ids)
    tokens = np.full((len(ids), width), tokenizer.pad_id, np.int32)
    for i, x in enumerate(ids):
        tokens[i, : len(x)] = x
    return tokens, np.array([len(x) for x in ids], np.int32)


def generate_sequences(
    target, params, prompts, lengths, *, temperatures=(1.0, 0.0), samples=2, new_tokens=192,
    batch=256, eos_id=None, pad_id=0, seed=0,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Prompt + target continuation per row: tokens [N, P + new] and valid lengths [N].

    Each prompt is decoded ``samples`` times at each temperature (different keys per row).
    """
    jobs = [(t, s) for t in temperatures for s in range(samples if t > 0 else 1)]
    rows, row_lengths = [], []
    width = prompts.shape[1]
    for job, (temperature, _sample) in enumerate(tqdm(jobs, desc="generating")):
        for start in range(0, len(prompts), batch):
            p, n = prompts[start : start + batch], lengths[start : start + batch]
            if len(p) < batch:  # keep one compiled shape
                p = np.concatenate([p, np.repeat(p[:1], batch - len(p), 0)])
                n = np.concatenate([n, np.repeat(n[:1], batch - len(n), 0)])
            keys = jax.random.split(jax.random.key(seed * 1000 + job * 100 + start), batch)
            out = autoregressive_decode(
                target, params, jnp.asarray(p), jnp.asarray(n), keys, max_new_tokens=new_tokens,
                sampling=SamplingConfig(temperature=temperature), eos_id=eos_id, pad_id=pad_id,
            )  # fmt: skip
            gen, gen_len = np.asarray(out.tokens), np.asarray(out.lengths)
            for i in range(min(batch, len(prompts) - start)):
                seq = np.full(width + new_tokens, pad_id, np.int32)
                seq[: n[i]] = p[i, : n[i]]
                seq[n[i] : n[i] + gen_len[i]] = gen[i, : gen_len[i]]
                rows.append(seq)
                row_lengths.append(n[i] + gen_len[i])
    return np.stack(rows), np.array(row_lengths, np.int32)


def frequent_tokens(sequences, lengths, vocab_size: int, size: int, always=()) -> np.ndarray:
    """The ``size`` most frequent token ids in the data (``always`` included), sorted."""
    counts = np.zeros(vocab_size, np.int64)
    for seq, n in zip(sequences, lengths, strict=True):
        np.add.at(counts, seq[:n], 1)
    counts[list(always)] = counts.max() + 1
    return np.sort(np.argsort(-counts, kind="stable")[:size]).astype(np.int32)
