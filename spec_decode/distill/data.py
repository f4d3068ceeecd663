"""Target-generated training text (DistillSpec): the draft learns what the target says."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from spec_decode import SamplingConfig, autoregressive_decode


def chat_prompts(tokenizer, texts, width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Chat-templated prompts, right-padded to ``width`` (default: the longest): [N, P], [N].

    A fixed ``width`` keeps one compiled decoder for several prompt sets; longer prompts are
    an error, never silently cut.
    """
    ids = [tokenizer.chat([{"role": "user", "content": t}]) for t in texts]
    longest = max(len(x) for x in ids)
    if width is None:
        width = longest
    elif longest > width:
        raise ValueError(f"width={width} is not allowed: a prompt has {longest} tokens")
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


def sample_user_messages(
    target, params, tokenizer, count: int, *, openings=("",), max_tokens: int = 48,
    batch: int = 256, seed: int = 0,
) -> list[str]:  # fmt: skip
    """``count`` user requests sampled from the target itself (temperature 1).

    The chat template is cut where the user's text would begin and the target continues it:
    an instruction model has learnt what users ask, so its samples cover far more kinds of
    request (code, maths, advice...) than any hand-written list. Each request starts with one
    of ``openings`` (cycled; "" leaves the target free), which spreads the requests over kinds
    the target rarely starts unprompted. A request ends at the turn's end token; one that runs
    past ``max_tokens`` is kept as it stands.
    """
    marker = "\x00"
    text = tokenizer.apply_chat_template([{"role": "user", "content": marker}], False)
    head = text[: text.index(marker)]
    starts = [tokenizer.encode(head + opening) for opening in openings]
    width = max(len(x) for x in starts)
    messages: list[str] = []
    for start in tqdm(range(0, count, batch), desc="sampling user messages"):
        rows = [starts[(start + i) % len(starts)] for i in range(batch)]
        prompts = np.full((batch, width), tokenizer.pad_id or 0, np.int32)
        for i, ids in enumerate(rows):
            prompts[i, : len(ids)] = ids
        lengths = np.array([len(x) for x in rows], np.int32)
        keys = jax.random.split(jax.random.key(seed * 7919 + start), batch)
        out = autoregressive_decode(
            target, params, jnp.asarray(prompts), jnp.asarray(lengths), keys,
            max_new_tokens=max_tokens, sampling=SamplingConfig(temperature=1.0),
            eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id,
        )  # fmt: skip
        tokens, n = np.asarray(out.tokens), np.asarray(out.lengths)
        for i in range(batch):
            opening = openings[(start + i) % len(openings)]
            ids = [int(t) for t in tokens[i, : n[i]] if t != tokenizer.eos_id]
            continuation = tokenizer.decode(ids, skip_special_tokens=True)
            messages.append((opening + continuation).strip())
    return messages[:count]
