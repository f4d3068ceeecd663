"""Built-in instruction prompts for distillation, with a held-out split that shares nothing.

Training prompts and held-out prompts use disjoint templates and disjoint topics, so held-out
acceptance rates measure generalisation, not memorised continuations. Deterministic: no data is
downloaded.
"""

from __future__ import annotations

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
