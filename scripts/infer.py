"""Gin-configured speculative inference with T5X-style flags.

    python scripts/infer.py \\
      --gin_file=runs/infer_speculative.gin --gin_file=pairs/xxl_small.gin \\
      --gin.TARGET_CHECKPOINT_PATH="'/ckpts/t5_1_1_xxl/checkpoint_1000000'" \\
      --gin.DRAFT_CHECKPOINT_PATH="'/ckpts/t5_1_1_small/checkpoint_1000000'" \\
      --gin.VOCABULARY_PATH="'/vocabs/cc_all.32000.100extra/sentencepiece.model'" \\
      --gin.INPUT_FILE="'inputs.jsonl'" --gin.INFER_OUTPUT_DIR="'/tmp/infer'"

``--gin_file`` names a file here or a shipped config (``spec_decode/t5x_compat/gin_support.py``
lists them);
files are parsed in order, then ``--gin_bindings`` / ``--gin.NAME=VALUE`` (gin expressions:
strings keep their quotes). Runs ``spec_decode.t5x_compat.inference.infer`` with the bindings,
shows a progress bar, writes predictions.jsonl and summary.json to INFER_OUTPUT_DIR and prints
the summary as JSON.

``--mesh=DATA,MODEL`` decodes on a (data, model) mesh of all devices (data * model of them):
the target split over 'model', the draft replicated, batch rows over 'data'. It is the same as
``--gin.MESH="@sharding.make_mesh()" --gin.MESH_DATA=DATA --gin.MESH_MODEL=MODEL`` and wins
over a MESH bound in the gin files. See docs/MESH.md.
"""

from __future__ import annotations

import argparse
import json
import sys

from spec_decode.t5x_compat import gin_support, inference


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gin_file", action="append", default=[], help="gin file (repeatable)")
    parser.add_argument(
        "--gin_bindings", action="append", default=[], help="gin binding (repeatable)"
    )
    parser.add_argument(
        "--gin_search_paths",
        action="append",
        default=[],
        help="extra directories for gin files and includes (repeatable, or comma-separated)",
    )
    parser.add_argument(
        "--mesh", default=None, help="DATA,MODEL: decode on a device mesh (e.g. 1,4)"
    )
    parser.add_argument("--print_config", action="store_true", help="print the bound config")
    args = parser.parse_args(gin_support.rewrite_gin_args(argv))
    if not args.gin_file:
        parser.error("--gin_file is required (e.g. --gin_file=runs/infer_speculative.gin)")
    args.gin_search_paths = [p for arg in args.gin_search_paths for p in arg.split(",") if p]
    if args.mesh is not None:
        args.mesh = parse_mesh(args.mesh, parser)
    return args


def parse_mesh(text: str, parser: argparse.ArgumentParser) -> tuple[int, int]:
    """'DATA,MODEL' -> (data, model), both integers >= 1."""
    try:
        data, model = (int(x) for x in text.split(","))
    except ValueError:
        parser.error(f"--mesh={text!r} is not allowed: it must be DATA,MODEL (e.g. 1,4)")
    if data < 1 or model < 1:
        parser.error(f"--mesh={text!r} is not allowed: DATA and MODEL must be >= 1")
    return data, model


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        gin_support.parse_gin(args.gin_file, args.gin_bindings, args.gin_search_paths)
        if args.print_config:
            import gin

            print(gin.config_str(), file=sys.stderr)
        overrides = {}
        if args.mesh is not None:
            from spec_decode import sharding

            overrides["mesh"] = sharding.make_mesh(*args.mesh)
        summary = gin_support.configured(inference.infer)(**overrides)
    except (ValueError, OSError, RuntimeError) as error:
        message = str(error)
        if isinstance(error, RuntimeError) and "Required bindings" not in message:
            raise
        if "REQUIRED" in message or "Required bindings" in message:
            message += (
                "\n(set every %gin.REQUIRED macro of the run file, e.g. "
                "--gin.TARGET_CHECKPOINT_PATH=\"'/path'\"; a pair file sets GAMMA when it is "
                "parsed after runs/infer_speculative.gin)"
            )
        print(f"infer.py: error: {message}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
