"""The distillation data mix: training requests from several sources, continued by the target.

Three sources, none naming a held-out topic (``prompts.mentions_held_out``):

    source                    requests                                   samples at T = 1
    templates                 the template prompts on 40 topics          ``samples``
    vocabulary topics         templates on words of the target's vocab   1
    target's own requests     user requests sampled from the target      1

Every request is chat-templated (one user turn of at most ``prompt_width`` tokens; longer ones
are left out and counted) and continued by the target at temperature 1 and 0 (``data``).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections.abc import Callable, Sequence

import numpy as np

from spec_decode.distill import data, prompts

# Openings for the sampled requests: "" leaves the target free; the rest spread requests over
# kinds an assistant is asked for.
OPENINGS = ("", "", "", "Write a Python", "Explain", "What is", "How do I", "Why", "Can you",
            "Write a", "Give me", "Describe", "What is the difference between", "Solve",
            "Summarize", "List")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class MixConfig:
    """How much of each source, and how the target continues it."""

    samples: int = 12  # continuations per template prompt at T = 1
    topic_prompts: int = 0  # template prompts on words of the target's vocabulary
    user_prompts: int = 0  # user requests sampled from the target
    prompt_width: int = 112  # prompt tokens: one compiled decoder for every source
    new_tokens: int = 192
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class TrainingSet:
    """Prompt + target continuation per row, and how many requests each source gave."""

    sequences: np.ndarray  # [N, prompt_width + new_tokens] int32, padded
    lengths: np.ndarray  # [N] valid tokens of each row
    prompt_counts: dict[str, int]  # source -> requests used

    def corpus(self) -> list[np.ndarray]:
        """The rows without their padding (what the n-gram tables count)."""
        return [seq[:n] for seq, n in zip(self.sequences, self.lengths, strict=True)]

    def save(self, path: str | pathlib.Path) -> None:
        np.savez(path, sequences=self.sequences, lengths=self.lengths,
                 prompt_counts=json.dumps(self.prompt_counts))  # fmt: skip

    @classmethod
    def load(cls, path: str | pathlib.Path) -> TrainingSet:
        with np.load(path) as saved:
            counts = json.loads(str(saved["prompt_counts"]))
            return cls(saved["sequences"], saved["lengths"], counts)


def request_sources(
    target, params, tokenizer, templates: Sequence[str], config: MixConfig, exclude=()
) -> dict[str, tuple[list[str], int]]:
    """Source name -> (requests, samples per request at T = 1).

    ``exclude`` lists requests never to train on (the CLI demo's prompts, which the distillation
    reports alpha on); the target may well ask them of itself.
    """
    sources = {"templates": (list(templates), config.samples)}
    if config.topic_prompts:
        tokens = [tokenizer.id_to_token(i) or "" for i in range(target.vocab_size)]
        topics = prompts.vocabulary_topics(tokens, config.topic_prompts, seed=config.seed)
        sources["vocabulary topics"] = (prompts.topic_prompts(topics, seed=config.seed), 1)
    if config.user_prompts:
        sampled = data.sample_user_messages(
            target, params, tokenizer, config.user_prompts, openings=OPENINGS, seed=config.seed
        )
        excluded = set(exclude)
        sampled = [
            m for m in sampled if m and m not in excluded and not prompts.mentions_held_out(m)
        ]
        sources["target's own requests"] = (sampled, 1)
    return sources


def training_set(
    target,
    params,
    tokenizer,
    sources: dict[str, tuple[list[str], int]],
    config: MixConfig,
    log: Callable[[str], None] | None = None,
) -> TrainingSet:
    """Each source's requests that fit ``prompt_width``, continued by the target."""
    log = log or _print
    parts, counts = [], {}
    for name, (texts, samples) in sources.items():
        fits = [t for t in texts if len(tokenizer.chat([{"role": "user", "content": t}]))
                <= config.prompt_width]  # fmt: skip
        if len(fits) < len(texts):
            left_out = len(texts) - len(fits)
            log(f"{name}: {left_out} prompts over {config.prompt_width} tokens left out")
        counts[name] = len(fits)
        tokens, lengths = data.chat_prompts(tokenizer, fits, width=config.prompt_width)
        parts.append(data.generate_sequences(
            target, params, tokens, lengths, samples=samples, new_tokens=config.new_tokens,
            batch=min(256, len(tokens)), eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id,
            seed=config.seed + len(parts),
        ))  # fmt: skip
        log(f"{name}: {len(fits)} prompts, e.g. {fits[len(fits) // 2]!r}")
    sequences = np.concatenate([s for s, _ in parts])
    lengths = np.concatenate([n for _, n in parts])
    return TrainingSet(sequences, lengths, counts)


def _print(message: str) -> None:
    print(message, flush=True)  # a long generation shows each source as soon as it is done
