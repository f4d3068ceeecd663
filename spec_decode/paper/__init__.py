"""The paper's T5 experiments rebuilt with models this project trains (issue 13).

``Pipeline`` runs the stages (vocab, pretrain, finetune, distill, quality, measure, report)
of a ``PaperConfig`` over a corpus; ``measure`` times and counts one target/draft pair;
``tables`` and ``figure`` lay the results out as the paper's Tables 2 and 3 and Figure 3.
``scripts/reproduce_paper.py`` is the command.
"""

from spec_decode.paper.config import TASKS, Budget, PaperConfig
from spec_decode.paper.figure import plot_task, theory_curves
from spec_decode.paper.measure import (
    best_run,
    cost_ratio,
    encoder_batches,
    greedy_equality,
    measure_baseline,
    measure_draft,
    run_record,
    timed_decode,
)
from spec_decode.paper.ngram_drafts import NGRAM_DRAFTS, ngram_draft, target_sequences
from spec_decode.paper.pipeline import STAGES, OutOfTime, Pipeline, check_corpus, check_stages
from spec_decode.paper.smoke import write_smoke_corpus
from spec_decode.paper.tables import (
    TABLE2_COLUMNS,
    TABLE3_COLUMNS,
    markdown,
    table2_rows,
    table3_rows,
)

__all__ = [
    "NGRAM_DRAFTS",
    "STAGES",
    "TABLE2_COLUMNS",
    "TABLE3_COLUMNS",
    "TASKS",
    "Budget",
    "OutOfTime",
    "PaperConfig",
    "Pipeline",
    "best_run",
    "check_corpus",
    "check_stages",
    "cost_ratio",
    "encoder_batches",
    "greedy_equality",
    "markdown",
    "measure_baseline",
    "measure_draft",
    "ngram_draft",
    "plot_task",
    "run_record",
    "table2_rows",
    "table3_rows",
    "target_sequences",
    "theory_curves",
    "timed_decode",
    "write_smoke_corpus",
]
