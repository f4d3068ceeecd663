"""Old import paths of moved modules give the very same modules (not second copies)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from spec_decode import _legacy_paths

MOVED = [
    *_legacy_paths.MOVED.items(),
    ("spec_decode.t5", "spec_decode.models.t5"),
    ("spec_decode.t5.decoding_model", "spec_decode.models.t5.decoding_model"),
    ("spec_decode.t5.layers", "spec_decode.models.t5.layers"),
    ("spec_decode.models.layers", "spec_decode.models.llama.layers"),
    ("spec_decode.models.hf_export", "spec_decode.formats.hf_llama"),
    ("spec_decode.checkpoints", "spec_decode.formats.t5x"),
    ("spec_decode.checkpoints.legacy", "spec_decode.formats.t5x.legacy"),
    ("spec_decode.checkpoints.tree", "spec_decode.formats.t5x.tree"),
    ("spec_decode.smollm2.gguf_file", "spec_decode.formats.gguf.reader"),
    ("spec_decode.distill.draft", "spec_decode.drafts.neural"),
]


@pytest.mark.parametrize(("old", "new"), MOVED)
def test_old_path_is_the_new_module(old, new):
    assert importlib.import_module(old) is importlib.import_module(new)


def test_old_names_are_the_new_objects():
    from spec_decode import models
    from spec_decode.models import llama, t5
    from spec_decode.smollm2 import gguf_loader

    assert models.LlamaLM is llama.LlamaLM and models.layers is llama.layers
    assert t5.T5Inputs is t5.T5DecodeParams
    assert (
        gguf_loader.load_gguf_llama
        is importlib.import_module("spec_decode.formats.gguf").load_gguf_llama
    )


def test_old_paths_work_in_a_fresh_interpreter():
    """What users wrote before the move: no prior import of the new paths helps here."""
    code = (
        "from spec_decode.decode import speculative_decode\n"
        "from spec_decode.sampling import SamplingConfig\n"
        "from spec_decode.t5.cache import T5Cache\n"
        "import spec_decode.core.functional as new, spec_decode.models.t5.cache as cache\n"
        "assert speculative_decode is new.speculative_decode and T5Cache is cache.T5Cache\n"
        "import sys; assert 'tensorflow' not in sys.modules and 'torch' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
