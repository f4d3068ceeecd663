"""notebooks/quickstart.ipynb runs top to bottom on CPU (a failing cell fails the test).

The notebook is executed in a fresh kernel with its ``parameters`` cell shrunk (8 new tokens,
one gamma, one timed repeat) so that it finishes in well under two minutes. Its install cell is
skipped because spec_decode is importable. Until the neural draft is shipped, the notebook runs
with the prompt-lookup draft instead (the ``smollm2_draft_name`` fixture).
"""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"


def _shrunk(notebook, draft: str):
    (cell,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    cell.source += f'\nDRAFT = "{draft}"\nMAX_NEW_TOKENS = 8\nGAMMAS = (GAMMA,)\nREPEATS = 1\n'
    return notebook


def test_quickstart_notebook_runs(smollm2_draft_name):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = _shrunk(nbformat.read(NOTEBOOK, as_version=4), smollm2_draft_name)
    client = nbclient.NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum(o.output_type == "display_data" for o in outputs) == 2  # the two plots
