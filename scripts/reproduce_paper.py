"""Rebuild the paper's T5 experiments (Tables 2 and 3, Figure 3) with models trained here.

    python scripts/build_corpus.py --out /data/corpus                  # on a machine with apt
    python scripts/reproduce_paper.py --gin_file=paper/reproduce.gin --corpus=/data/corpus \\
      --work=/data/paper_work --results=docs/paper [--stages=vocab,pretrain] [--call_seconds=520]
    python scripts/reproduce_paper.py --smoke --work=/tmp/paper_smoke    # tiny, CPU, < 90 s

Stages (``spec_decode.paper.STAGES``, run in this order, each skipped unit by unit where its
outputs exist under --work): vocab, pretrain, finetune, distill, quality, measure, report.
--call_seconds stops before a training unit whose budget no longer fits (exit status 3: run
the same command again to go on). --smoke parses paper/smoke.gin (after any --gin_file) and,
without --corpus, writes a toy corpus under --work. --gin_param binds gin values
(``--gin_param="paper.PaperConfig.test_examples=32"``), after the files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_OUT_OF_TIME = 3


def parse_args(argv: list[str]) -> argparse.Namespace:
    from spec_decode.paper import STAGES

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gin_file", action="append", default=[], help="gin file (repeatable)")
    p.add_argument("--gin_param", action="append", default=[], help="gin binding (repeatable)")
    p.add_argument("--corpus", help="build_corpus.py's output directory")
    p.add_argument("--work", required=True, help="every stage's outputs (resumable)")
    p.add_argument("--results", help="tables, figure and results.json (default WORK/results)")
    p.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, of {STAGES}")
    p.add_argument("--call_seconds", type=float, help="this call's time; see the docstring")
    p.add_argument("--smoke", action="store_true", help="tiny models and toy data, CPU")
    p.add_argument("--no_progress", action="store_true")
    args = p.parse_args(argv)
    if args.smoke:
        args.gin_file = [*args.gin_file, "paper/smoke.gin"]
    elif not args.gin_file:
        p.error("--gin_file is required (e.g. --gin_file=paper/reproduce.gin), or --smoke")
    if not args.smoke and not args.corpus:
        p.error("--corpus is required: build it with `python scripts/build_corpus.py --out DIR`")
    return args


def config_from_gin(gin_files: list[str], gin_params: list[str]):
    """The ``PaperConfig`` that the gin files and bindings describe."""
    import gin

    from spec_decode import paper
    from spec_decode.t5x_compat import gin_support

    gin.clear_config()
    # A checkout's own configs/ (this script's), beside the installed ones.
    here = Path(__file__).resolve().parents[1] / "configs"
    gin_support.parse_gin(gin_files, gin_params, [str(here)] if here.is_dir() else [],
                          finalize=False)  # fmt: skip
    return gin_support.configured(paper.PaperConfig)()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from spec_decode import paper

    try:
        stages = paper.check_stages([s for s in args.stages.split(",") if s])
        config = config_from_gin(args.gin_file, args.gin_param)
        corpus = args.corpus
        if corpus is None:
            corpus = paper.write_smoke_corpus(Path(args.work) / "smoke_corpus", seed=config.seed)
        pipeline = paper.Pipeline(
            config, corpus, args.work, args.results, call_seconds=args.call_seconds,
            progress=not args.no_progress,
        )  # fmt: skip
    except ValueError as error:
        print(f"reproduce_paper.py: error: {error}", file=sys.stderr)
        return 2
    try:
        log = pipeline.run(stages)
    except ValueError as error:
        print(f"reproduce_paper.py: error: {error}", file=sys.stderr)
        return 2
    except paper.OutOfTime as error:
        print(json.dumps({"stopped": str(error), "log": pipeline.log}))
        print("out of --call_seconds: run the same command again to continue", file=sys.stderr)
        return EXIT_OUT_OF_TIME
    print(json.dumps({"stages": stages, "log": log, "results": str(pipeline.results)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
