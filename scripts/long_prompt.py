"""Wall time and peak memory of a long prompt against a short one, both decoders (CPU).

    python scripts/long_prompt.py              # SmolLM2-135M, ~20,000 characters vs ~60 tokens
    python scripts/long_prompt.py --smoke      # a tiny random Llama, a few hundred tokens

Each case (prompt x decoder) runs in its own subprocess, so its peak RSS (``ru_maxrss``) is its
own: loading, compiling and decoding ``--new-tokens`` tokens greedily. The wall time is the
first ``run`` call, compilation included, after the models are loaded. The prompts are real
text: Python standard-library docstrings, in a fixed order.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import jax
import numpy as np

LONG_CHARS = 20_000
SHORT_TOKENS = 60
SMOKE_LENGTHS = {"short": 12, "long": 700}
DOC_MODULES = (
    "argparse", "asyncio", "collections", "contextlib", "csv", "dataclasses", "decimal",
    "email", "fractions", "functools", "http", "inspect", "itertools", "json", "logging",
    "os", "pathlib", "pickle", "re", "shutil", "socket", "sqlite3", "string", "subprocess",
    "tarfile", "threading", "typing", "unittest", "urllib", "zipfile",
)  # fmt: skip


def docstring_text(chars: int) -> str:
    """The first ``chars`` characters of the modules' docstrings and their public members'."""
    import importlib
    import inspect

    parts = []
    for name in DOC_MODULES:
        module = importlib.import_module(name)
        parts.append(inspect.getdoc(module) or "")
        for member in sorted(getattr(module, "__all__", [])):
            parts.append(inspect.getdoc(getattr(module, member, None)) or "")
            if sum(map(len, parts)) > chars:
                return "\n\n".join(p for p in parts if p)[:chars]
    raise ValueError(f"chars={chars} is not allowed: the docstrings hold fewer characters")


def real_prompts(target) -> dict[str, list[int]]:
    """Token ids (chat template) of the long prompt and of a ~SHORT_TOKENS-token prefix of it."""
    text = docstring_text(LONG_CHARS)
    chars = 1
    while len(target.encode_prompt(text[:chars])) < SHORT_TOKENS:
        chars += 10
    return {"short": target.encode_prompt(text[:chars]), "long": target.encode_prompt(text)}


def load(smoke: bool, decoder_name: str):
    """(target model, params, draft model or None, draft params, prompts)."""
    if smoke:
        from spec_decode.models.llama import tiny_llama

        model, params = tiny_llama(2, 0, vocab_size=256, max_length=1024)
        draft, draft_params = tiny_llama(1, 1, vocab_size=256, max_length=1024)
        rng = np.random.default_rng(0)
        prompts = {k: rng.integers(0, 256, n).tolist() for k, n in SMOKE_LENGTHS.items()}
    else:
        from spec_decode.app import registry

        target = registry.load_target("smollm2-135m")
        model, params = target.model, target.params
        draft, draft_params = registry.load_draft("smollm2-draft", target)
        prompts = real_prompts(target)
    if decoder_name == "autoregressive":
        draft, draft_params = None, None
    return model, params, draft, draft_params, prompts


def run_case(smoke: bool, prompt: str, decoder_name: str, new_tokens: int) -> dict:
    """One case in this process: the record the parent prints."""
    from spec_decode.app.generation import announce
    from spec_decode.core.decoder import DecoderParams, SpeculativeDecoder
    from spec_decode.core.sampling import SamplingConfig

    start = time.perf_counter()
    model, params, draft, draft_params, prompts = load(smoke, decoder_name)
    loaded = time.perf_counter()
    greedy = SamplingConfig(temperature=0.0)
    decoder = SpeculativeDecoder(model, draft, max_new_tokens=new_tokens, sampling=greedy)
    ids = np.asarray([prompts[prompt]], np.int32)
    announce(decoder, ids.shape)
    result = decoder.run(DecoderParams(params, draft_params), ids)
    tokens = jax.device_get(result.tokens)[0].tolist()
    done = time.perf_counter()
    return {
        "prompt": prompt,
        "decoder": decoder_name,
        "prompt_tokens": ids.shape[1],
        "load_s": round(loaded - start, 2),
        "run_s": round(done - loaded, 2),  # compilation included
        "peak_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "tokens": tokens,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny random models")
    parser.add_argument("--new-tokens", type=int, default=8)
    parser.add_argument("--case", help="prompt,decoder: run one case here and print its JSON")
    parser.add_argument("--json", help="also write the records to this file")
    args = parser.parse_args(argv)
    if args.case:
        prompt, decoder_name = args.case.split(",")
        print(json.dumps(run_case(args.smoke, prompt, decoder_name, args.new_tokens)))
        return 0
    records = []
    for prompt in ("short", "long"):
        for decoder_name in ("autoregressive", "speculative"):
            command = [sys.executable, __file__, "--case", f"{prompt},{decoder_name}"]
            command += ["--new-tokens", str(args.new_tokens)] + ["--smoke"] * args.smoke
            out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
            records.append(json.loads(out.strip().splitlines()[-1]))
            print(_row(records[-1]), flush=True)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(records, file, indent=1)
    greedy_agree = {r["prompt"] for r in records if r["decoder"] == "autoregressive"}
    for prompt in greedy_agree:
        same = [r["tokens"] for r in records if r["prompt"] == prompt]
        if any(t != same[0] for t in same):
            print(f"greedy tokens differ between the decoders on the {prompt} prompt")
            return 1
    return 0


def _row(record: dict) -> str:
    keys = ("prompt", "decoder", "prompt_tokens", "load_s", "run_s", "peak_gb")
    return "| " + " | ".join(str(record[k]) for k in keys) + " |"


if __name__ == "__main__":
    sys.exit(main())
