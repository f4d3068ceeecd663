"""Importing this module registers the corpus' seqio tasks (``register_corpus_tasks``), for
``scripts/infer.py``'s MIXTURE_OR_TASK_MODULE; the corpus and vocabulary come from the
environment:

    SPEC_DECODE_CORPUS=/data/corpus SPEC_DECODE_VOCABULARY=/data/paper_work/vocab/spm.model \\
    python scripts/infer.py ... --gin.MIXTURE_OR_TASK_NAME="'spec_decode_translation_en_de'" \\
      --gin.MIXTURE_OR_TASK_MODULE="'spec_decode.t5x_compat.corpus_tasks'" --gin.SPLIT="'test'"

SPEC_DECODE_EXTRA_IDS (default 100) sets the sentinels after the vocabulary's pieces.
"""

import os

from spec_decode.t5x_compat.seqio_tasks import register_corpus_tasks

_missing = [n for n in ("SPEC_DECODE_CORPUS", "SPEC_DECODE_VOCABULARY") if n not in os.environ]
if _missing:
    raise ValueError(
        f"{' and '.join(_missing)} not set: set SPEC_DECODE_CORPUS to build_corpus.py's output "
        "and SPEC_DECODE_VOCABULARY to the SentencePiece model (reproduce_paper.py's "
        "<work>/vocab/spm.model)"
    )
register_corpus_tasks(
    os.environ["SPEC_DECODE_CORPUS"],
    os.environ["SPEC_DECODE_VOCABULARY"],
    extra_ids=int(os.environ.get("SPEC_DECODE_EXTRA_IDS", "100")),
)
