"""Built-in instruction prompts for distillation, with a held-out split that shares nothing.

Training prompts and held-out prompts use disjoint templates and disjoint topics, so held-out
acceptance rates measure generalisation, not memorised continuations. Deterministic: no data is
downloaded.

Two larger training sources widen the data beyond the templates: ``vocabulary_topics`` (words of
the target's own vocabulary as topics) and the target's own user messages (``data.sample_user_
messages``); ``mentions_held_out`` filters both so that no held-out topic enters training.
"""

from __future__ import annotations

import numpy as np

TRAIN_TEMPLATES = (
    "Write a short story about {}.", "Explain {} to a ten-year-old.",
    "List five interesting facts about {}.", "Write a poem about {}.",
    "What are the pros and cons of {}?", "Give me three tips related to {}.",
    "Describe the history of {} in a paragraph.", "Write an email to a friend about {}.",
    "Summarize what people should know about {}.", "Write a dialogue between two people about {}.",
    "How would you teach a class on {}?", "Write a product description inspired by {}.",
)  # fmt: skip
HELD_OUT_TEMPLATES = (
    "Tell me something surprising about {}.", "Why do people care about {}?",
    "Write a haiku and then a limerick about {}.", "What questions would an expert ask about {}?",
    "Compare {} with something from everyday life.", "Write a news headline and lead about {}.",
)  # fmt: skip
TRAIN_TOPICS = (
    "the ocean", "volcanoes", "honey bees", "the moon", "chess", "bread baking", "trains",
    "rainforests", "the Roman empire", "jazz music", "photosynthesis", "electric cars",
    "mountain climbing", "origami", "the human heart", "coffee", "penguins", "libraries",
    "solar panels", "the printing press", "gardening", "earthquakes", "recycling", "dinosaurs",
    "the internet", "friendship", "winter", "bicycles", "the pyramids", "vaccines", "robots",
    "rivers", "clocks", "the alphabet", "football", "tea ceremonies", "bridges", "owls",
    "lightning", "maps",
)  # fmt: skip
HELD_OUT_TOPICS = (
    "deserts", "octopuses", "the violin", "glaciers", "lighthouses", "mushrooms", "kites",
    "comets", "ancient Greece", "submarines", "sourdough", "wolves",
)  # fmt: skip


def train_prompts() -> list[str]:
    return [t.format(topic) for topic in TRAIN_TOPICS for t in TRAIN_TEMPLATES]


def held_out_prompts() -> list[str]:
    return [t.format(topic) for topic in HELD_OUT_TOPICS for t in HELD_OUT_TEMPLATES]


# Word stems that catch each held-out topic in any inflection (tested against HELD_OUT_TOPICS).
HELD_OUT_STEMS = (
    "desert", "octop", "violin", "glacier", "lighthouse", "mushroom", "kite", "comet", "greece",
    "greek", "submarine", "sourdough", "wolf", "wolves",
)  # fmt: skip


def mentions_held_out(text: str) -> bool:
    """Whether ``text`` names a held-out topic (case-insensitive, any inflection)."""
    lowered = text.lower()
    return any(stem in lowered for stem in HELD_OUT_STEMS)


def vocabulary_topics(tokens: list[str], count: int, seed: int = 0) -> list[str]:
    """``count`` distinct lowercase words (6+ letters) from a vocabulary, none held out.

    ``tokens`` are the tokenizer's token strings; byte-level BPE marks a leading space with
    "Ġ", and only such whole words are taken.
    """
    words = sorted({t[1:] for t in tokens if t.startswith("Ġ") and t[1:].isalpha()
                    and t[1:].islower() and len(t) >= 7})  # fmt: skip
    words = [w for w in words if not mentions_held_out(w)]
    if count > len(words):
        raise ValueError(f"count={count} is not allowed: the vocabulary has {len(words)} words")
    picked = np.random.default_rng(seed).choice(len(words), count, replace=False)
    return [words[i] for i in sorted(picked)]


def topic_prompts(topics: list[str], seed: int = 0) -> list[str]:
    """One training template per topic, drawn at random (so templates are evenly used)."""
    rng = np.random.default_rng(seed)
    return [TRAIN_TEMPLATES[rng.integers(len(TRAIN_TEMPLATES))].format(t) for t in topics]
