"""Build the real-data corpus from this machine's apt lists, gettext catalogs and Python sources.

    python scripts/build_corpus.py --out /tmp/corpus           # everything (a few minutes)
    python scripts/build_corpus.py --out /tmp/smoke --smoke    # a few hundred examples each

Needs `apt-get update -o Acquire::Languages=en,de,fr` once (as root) for the Debian lists.
A second run with the same arguments finds the manifest and does nothing.
"""

from __future__ import annotations

import argparse
import json
import time

from spec_decode.data.corpus import CorpusConfig, build_corpus, split_table

SMOKE_LIMIT = 300


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_LIMIT} examples per source")
    parser.add_argument("--validation", type=float, default=0.05, help="held-out fraction")
    parser.add_argument("--test", type=float, default=0.05, help="held-out fraction")
    parser.add_argument("--salt", default="spec_decode", help="changes every group's split")
    parser.add_argument("--lists-dir", default=CorpusConfig.lists_dir, help="apt's lists")
    parser.add_argument("--locale-dir", action="append", help="gettext dirs (default: found)")
    parser.add_argument("--python-root", action="append", help="source roots (default: sys)")
    parser.add_argument("--force", action="store_true", help="rebuild even when cached")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    config = CorpusConfig(
        validation=args.validation,
        test=args.test,
        salt=args.salt,
        limit=SMOKE_LIMIT if args.smoke else None,
        lists_dir=args.lists_dir,
        locale_dirs=tuple(args.locale_dir) if args.locale_dir else None,
        python_roots=tuple(args.python_root) if args.python_root else None,
    )
    t = time.perf_counter()
    manifest = build_corpus(args.out, config, force=args.force, progress=not args.no_progress)
    print(split_table(manifest))
    print("inputs:", json.dumps(manifest["inputs"]))
    print(f"words: {manifest['words']}  stages (s): {json.dumps(manifest['seconds'])}")
    print(f"wall: {time.perf_counter() - t:.1f} s  manifest: {args.out}/manifest.json")
    return manifest


if __name__ == "__main__":
    main()
