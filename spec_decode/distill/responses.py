"""Target-written responses to chat requests, batched through the library's own decoder.

Each request is one user turn in the target's chat template (``tokenizer.chat``), answered at
every temperature of ``ResponseConfig`` (T = 0 and T = 1 by default). Prompts are right-padded
to the smallest of a few fixed widths that holds them (one compiled decoder per width and
temperature); a prompt longer than the widest is left out and counted, never cut.

Row keys are ``fold_in(fold_in(key(seed), index), t)`` for request ``index`` (its place in the
whole request list) and temperature number ``t``, so a response does not depend on the batch it
was decoded in: a shard regenerated after a crash is the same shard.

    request 7, T = 1    prompt ids [P7]   ->   response ids [<= new_tokens], text, finished
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from spec_decode import SamplingConfig, autoregressive_decode
from spec_decode.distill.requests import Request


@dataclasses.dataclass(frozen=True)
class ResponseConfig:
    temperatures: tuple[float, ...] = (0.0, 1.0)
    new_tokens: int = 256
    widths: tuple[int, ...] = (64, 128, 256, 512)  # prompt widths (tokens), ascending
    batch: int = 128  # rows per decoder call
    seed: int = 0

    def __post_init__(self):
        if not self.temperatures or any(
            not isinstance(t, int | float) or t < 0 for t in self.temperatures
        ):
            raise ValueError(
                f"temperatures={self.temperatures!r} is not allowed: one or more numbers >= 0"
            )
        if not self.widths or list(self.widths) != sorted(set(self.widths)) or self.widths[0] < 1:
            raise ValueError(
                f"widths={self.widths!r} is not allowed: distinct positive ints, ascending"
            )
        for name in ("new_tokens", "batch"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} is not allowed: a positive int")


def encode_requests(tokenizer, requests: Sequence[Request]) -> list[list[int]]:
    """Each request's chat-templated prompt ids (one user turn, generation prompt added)."""
    return [tokenizer.chat([{"role": "user", "content": r.text}]) for r in requests]


def respond(
    target, params, tokenizer, requests: Sequence[Request], config: ResponseConfig,
    first_index: int = 0,
) -> tuple[list[dict], int]:  # fmt: skip
    """Examples (one per request and temperature, in request order) and the number of
    requests left out for being longer than ``config.widths[-1]``.

    ``first_index`` is the place of ``requests[0]`` in the whole list (it fixes the keys).
    """
    ids = encode_requests(tokenizer, requests)
    widths = np.asarray(config.widths)
    bucket = np.searchsorted(widths, [len(x) for x in ids])  # len(widths): too long
    pad = tokenizer.pad_id if tokenizer.pad_id is not None else 0
    answers: dict[tuple[int, int], tuple[list[int], bool]] = {}
    root = jax.random.key(config.seed)
    for b, width in enumerate(config.widths):
        rows = np.flatnonzero(bucket == b)
        for t, temperature in enumerate(config.temperatures):
            for start in range(0, len(rows), config.batch):
                chunk = rows[start : start + config.batch]
                decoded = _decode(
                    target, params, [ids[i] for i in chunk], chunk + first_index, root, t,
                    int(width), temperature, config, tokenizer.eos_id, pad,
                )  # fmt: skip
                for i, answer in zip(chunk, decoded, strict=True):
                    answers[int(i), t] = answer
    examples = []
    for i, request in enumerate(requests):
        if bucket[i] == len(widths):
            continue
        for t, temperature in enumerate(config.temperatures):
            out, finished = answers[i, t]
            text = tokenizer.decode(
                [x for x in out if x != tokenizer.eos_id], skip_special_tokens=True
            )
            examples.append({
                **request.to_json(), "index": first_index + i, "temperature": temperature,
                "prompt_ids": ids[i], "response_ids": out, "response": text,
                "finished": finished,
            })  # fmt: skip
    return examples, int(np.sum(bucket == len(widths)))


def _decode(
    target, params, prompts, indices, root, t, width, temperature, config, eos_id, pad_id
) -> list[tuple[list[int], bool]]:
    """One decoder call on up to ``config.batch`` prompts (the batch padded with copies of the
    first row, so every call has one shape)."""
    n = len(prompts)
    tokens = np.full((config.batch, width), pad_id, np.int32)  # [B, P]
    lengths = np.full(config.batch, len(prompts[0]), np.int32)  # [B]
    for row, ids in enumerate(prompts):
        tokens[row, : len(ids)] = ids
        lengths[row] = len(ids)
    tokens[n:] = tokens[0]
    rows = np.concatenate([indices, np.repeat(indices[:1], config.batch - n)])
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.fold_in(root, i), t))(
        jnp.asarray(rows, jnp.uint32)
    )
    out = autoregressive_decode(
        target, params, jnp.asarray(tokens), jnp.asarray(lengths), keys,
        max_new_tokens=config.new_tokens, sampling=SamplingConfig(temperature=temperature),
        eos_id=eos_id, pad_id=pad_id,
    )  # fmt: skip
    generated, counts = np.asarray(out.tokens), np.asarray(out.lengths)  # [B, new], [B]
    result = []
    for row in range(n):
        ids = [int(x) for x in generated[row, : counts[row]]]
        result.append((ids, eos_id is not None and eos_id in ids))
    return result
