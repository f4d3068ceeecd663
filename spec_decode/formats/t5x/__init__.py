"""T5X checkpoints without t5x: both formats read (auto-detected) and written.

    ckpt = load_t5x_checkpoint("gs-copy/t5_1_1_small/checkpoint_1000000")   # legacy or Orbax
    params = ckpt["target"]

Requires the 't5x' extra (tensorstore; Orbax only for writing the Orbax format).
"""

from spec_decode.formats.t5x.legacy import save_t5x_checkpoint_legacy
from spec_decode.formats.t5x.loading import find_t5x_checkpoint, load_t5x_checkpoint
from spec_decode.formats.t5x.orbax_format import save_t5x_checkpoint_orbax
from spec_decode.formats.t5x.tree import check_params_match

__all__ = [
    "check_params_match",
    "find_t5x_checkpoint",
    "load_t5x_checkpoint",
    "save_t5x_checkpoint_legacy",
    "save_t5x_checkpoint_orbax",
]
