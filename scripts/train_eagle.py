"""Train an EAGLE draft (one block reading the target's features) on text the target generates.

    python scripts/train_eagle.py --smoke      # tiny random target, CPU, seconds

Steps: continuations of random prompts sampled from the target at temperature 1 -> teacher-
forced training on the target's hidden states (``spec_decode.distill.eagle``) -> alpha at
temperature 1 on held-out prompts, untrained (the target's first block, fc ignoring the
features) and trained, from the decoder's own statistics -> one JSON line. Only --smoke is
wired: a SmolLM2 draft needs a GPU run and the weights do not exist yet.
"""

from __future__ import annotations

import argparse
import json
import sys

import jax
import numpy as np

from spec_decode import DecoderParams, SamplingConfig, SpeculativeDecoder, autoregressive_decode
from spec_decode.distill.eagle import train_eagle
from spec_decode.drafts import EagleDraft, eagle_config, init_eagle
from spec_decode.drafts.eagle import own_parameter_count
from spec_decode.models import tiny_llama


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny random target on a CPU")
    parser.add_argument("--steps", type=int, default=150)
    return parser.parse_args(argv)


def _texts(target, params, key, rows, prompt_width=4, new=28):
    prompts = np.asarray(jax.random.randint(key, (rows, prompt_width), 2, target.vocab_size))
    out = autoregressive_decode(
        target, params, prompts, None, jax.random.fold_in(key, 1), max_new_tokens=new,
        sampling=SamplingConfig(temperature=1.0),
    )  # fmt: skip
    return prompts, np.concatenate([prompts, np.asarray(out.tokens)], axis=1)


def smoke(steps: int) -> dict:
    target, target_params = tiny_llama(2, seed=0, vocab_size=64, max_length=128)
    draft = EagleDraft(eagle_config(target.config, 1))
    untrained = init_eagle(draft, target_params, jax.random.key(1))
    _, sequences = _texts(target, target_params, jax.random.key(2), 256)
    lengths = np.full((len(sequences),), sequences.shape[1])
    trained, losses = train_eagle(
        target, target_params, draft, untrained, sequences, lengths, steps=steps, batch=32,
        learning_rate=3e-3,
    )  # fmt: skip
    held_out, _ = _texts(target, target_params, jax.random.key(3), 16)
    decoder = SpeculativeDecoder(target, draft, 3, max_new_tokens=24)  # temperature 1
    alpha = {}
    for name, params in (("untrained", untrained), ("trained", trained)):
        result = decoder.run(DecoderParams(target_params, params), held_out, None, 4)
        alpha[name] = result.summary()["alpha"]
    return {
        "first_loss": float(np.mean(losses[:10])),
        "last_loss": float(np.mean(losses[-10:])),
        "alpha": alpha,
        "own_parameters": own_parameter_count(draft.config),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.smoke:
        print("only --smoke is wired (see the module docstring)", file=sys.stderr)
        return 2
    print(json.dumps(smoke(args.steps)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
