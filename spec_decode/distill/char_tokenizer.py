"""A character tokenizer with a chat template: the stand-in that ``--smoke`` runs pair with a
tiny random Llama, so a data pipeline runs end to end without SmolLM2's file.

    id   0      1      2        3          4 ... 98
         pad    eos    <user>   <assistant> printable ASCII ' '..'~' (anything else: '?')
"""

from __future__ import annotations

from collections.abc import Sequence

FIRST, PRINTABLE = 4, range(32, 127)
VOCAB_SIZE = FIRST + len(PRINTABLE)


class CharTokenizer:
    pad_id, eos_id, bos_id = 0, 1, None
    user_id, assistant_id = 2, 3
    vocab_size = VOCAB_SIZE

    def encode(self, text: str) -> list[int]:
        return [FIRST + (ord(c) - 32 if 32 <= ord(c) < 127 else ord("?") - 32) for c in text]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        names = {0: "<pad>", 1: "<eos>", 2: "<user>", 3: "<assistant>"}
        return "".join(
            chr(i - FIRST + 32) if i >= FIRST else "" if skip_special_tokens else names[i]
            for i in ids
        )

    def chat(self, messages: Sequence[dict[str, str]], add_generation_prompt: bool = True):
        """``<user> text <assistant>`` per user turn (the last with the generation prompt)."""
        ids: list[int] = []
        for m in messages:
            ids += [self.user_id] + self.encode(m["content"]) + [self.assistant_id]
        return ids if add_generation_prompt else ids[:-1]

    def id_to_token(self, token_id: int) -> str | None:
        return self.decode([token_id]) if 0 <= token_id < VOCAB_SIZE else None


def tiny_chat_target(seed: int = 0, max_length: int = 256):
    """(model, params, tokenizer): a one-layer random Llama over this tokenizer's vocabulary."""
    from spec_decode.models import tiny_llama

    model, params = tiny_llama(1, seed, vocab_size=VOCAB_SIZE, max_length=max_length)
    return model, params, CharTokenizer()
