"""Peers in the same run on the same device: Hugging Face transformers against our decoders.

    python scripts/benchmark_hf_peer.py --gguf SmolLM2-135M-Instruct.Q4_1.gguf --out results/
    python scripts/benchmark_hf_peer.py --smoke --out /tmp/peer     # tiny random models, CPU

Greedy, batch 1, the same target weights (SmolLM2 dequantised from its GGUF) and the same draft
weights (the shipped ``smollm2-draft`` as a full-vocabulary transformers Llama) on both sides:
  - transformers `generate` with its default dynamic cache;
  - transformers with `cache_implementation="static"` and `torch.compile` (its fastest);
  - transformers assisted generation (`assistant_model=`);
  - ours: the autoregressive decoder, the speculative one at --gamma and at gamma "auto" (round
    costs measured first, in the loop).
Every output is compared with plain greedy decoding. EOS is ignored so each run makes exactly
--max-new-tokens tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # leave memory for torch

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from spec_decode import (  # noqa: E402
    DecoderParams,
    SamplingConfig,
    SpeculativeDecoder,
    autoregressive_decode,
    speculative_decode,
)
from spec_decode.app import registry  # noqa: E402
from spec_decode.bench import auto_policy, time_calls  # noqa: E402
from spec_decode.formats.hf_llama import to_hf_llama  # noqa: E402

PROMPT = "Explain in a few sentences why the sky is blue."


def _timed(fn, repeats, warmup):
    return time_calls({"run": fn}, repeats, warmup)["run"]


def _models(args):
    if args.smoke:
        from spec_decode.models import tiny_llama

        def make(layers, seed):
            return tiny_llama(layers, seed, vocab_size=256, emb_dim=64, max_length=512)

        target, draft = make(2, 0), make(1, 1)
        return target, draft, draft, [1, 5, 9, 13, 17, 21]
    from spec_decode.models import LlamaLM

    target, draft, draft_params = registry.load_pair(
        "smollm2-135m", "smollm2-draft", dtype="bfloat16", gguf=args.gguf, draft_dir=args.draft_dir
    )
    # transformers drafts score the whole vocabulary: the same body with the full tied head.
    hf_draft = (LlamaLM(draft.body), draft_params["body"])
    prompt = target.encode_prompt(PROMPT, chat=True)
    model = target.model
    if args.attention is not None:
        model, draft = (registry.with_attention(m, args.attention) for m in (model, draft))
    return (model, target.params), (draft, draft_params), hf_draft, prompt


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gguf", default=None)
    parser.add_argument("--draft-dir", default=None, help="smollm2-draft's (default: shipped)")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--gamma", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--warmup",
        type=int,
        default=3,
        help="untimed runs per decoder first (torch.compile and CUDA graphs settle in these)",
    )
    parser.add_argument(
        "--compile-warmup",
        type=int,
        default=10,
        help="untimed runs of the static-cache compiled peer (its recompiles settle in these)",
    )
    parser.add_argument(
        "--attention", default=None,
        help="our Llama models' attention (LlamaConfig.attention; default: the backend's)",
    )  # fmt: skip
    parser.add_argument("--out", default="peer_results")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile peer")
    parser.add_argument(
        "--no-auto", action="store_true", help="skip ours at gamma auto (its cost measurement)"
    )
    args = parser.parse_args(argv)
    if args.warmup < 1 or args.repeats < 1:
        parser.error(f"--warmup={args.warmup} --repeats={args.repeats}: both must be >= 1")
    if args.smoke:
        args.max_new_tokens, args.repeats, args.warmup, args.no_compile = 16, 1, 1, True
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch_dtype = torch.bfloat16 if device == "cuda" else torch.float32
    (target, target_params), (draft, draft_params), hf_draft, prompt = _models(args)
    n = args.max_new_tokens
    hf_target = to_hf_llama(target.config, jax.device_get(target_params), torch_dtype, device)
    hf_assistant = to_hf_llama(hf_draft[0].config, jax.device_get(hf_draft[1]), torch_dtype, device)
    ids = torch.tensor([prompt], device=device)
    greedy = dict(do_sample=False, max_new_tokens=n, min_new_tokens=n, pad_token_id=0)

    def hf_run(model, **kw):
        def run():
            with torch.no_grad():
                out = model.generate(ids, **greedy, **kw)
            if device == "cuda":
                torch.cuda.synchronize()
            return out[0, len(prompt) :].tolist()

        return run

    results = {}
    seconds, plain = _timed(hf_run(hf_target), args.repeats, args.warmup)
    results["transformers_dynamic_cache"] = (seconds, plain)
    results["transformers_assisted"] = _timed(
        hf_run(hf_target, assistant_model=hf_assistant), args.repeats, args.warmup
    )
    if not args.no_compile:
        # transformers compiles the forward itself when the cache is static.
        results["transformers_static_compiled"] = _timed(
            hf_run(hf_target, cache_implementation="static"), args.repeats, args.compile_warmup
        )
    prompt_array = jnp.array([prompt], jnp.int32)
    common = dict(max_new_tokens=n, sampling=SamplingConfig(temperature=0.0))
    results["ours_autoregressive"] = _timed(
        lambda: np.asarray(autoregressive_decode(target, target_params, prompt_array, **common)
                           .tokens)[0].tolist(), args.repeats, args.warmup)  # fmt: skip
    results["ours_speculative"] = _timed(
        lambda: np.asarray(speculative_decode(target, target_params, draft, draft_params,
                                              prompt_array, gamma=args.gamma, **common)
                           .tokens)[0].tolist(), args.repeats, args.warmup)  # fmt: skip
    policy = None
    if not args.no_auto:
        policy = auto_policy(target, target_params, draft, draft_params, batch=1)
        auto = SpeculativeDecoder(target, draft, "auto", policy=policy, **common)
        results["ours_speculative_auto"] = _timed(
            lambda: np.asarray(auto.run(DecoderParams(target_params, draft_params), prompt_array)
                               .tokens)[0].tolist(), args.repeats, args.warmup)  # fmt: skip
    ours_plain = results["ours_autoregressive"][1]
    table = {
        name: {
            "tokens_per_s": n / seconds,
            "identical_to_transformers_greedy": out == plain,
            "identical_to_our_greedy": out == ours_plain,
        }
        for name, (seconds, out) in results.items()
    }
    table["_meta"] = {"device": str(jax.devices()[0]), "torch_device": device,
                      "max_new_tokens": n, "gamma": args.gamma, "torch": torch.__version__,
                      "repeats": args.repeats, "warmup": args.warmup,
                      "compile_warmup": args.compile_warmup,
                      "auto_costs": policy and {"c": policy.costs.draft,
                                                "verify": policy.costs.verify,
                                                "rounds": policy.costs.rounds},
                      "jax": jax.__version__}  # fmt: skip
    out_dir = pathlib.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "peers.json").write_text(json.dumps(table, indent=1))
    print(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
