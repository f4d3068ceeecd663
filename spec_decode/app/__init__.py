"""The command line's logic: named models (``registry``), ``generate``, streaming and the demo.

``spec_decode.cli`` only parses arguments and prints; everything it runs is importable here.
"""

from spec_decode.app.demo import DemoOptions, format_report, run_demo
from spec_decode.app.generation import GenerateOptions, Sample, generate, iter_generate
from spec_decode.app.registry import DRAFTS, TARGETS, Target, load_draft, load_target
from spec_decode.app.streaming import DecodeStream, TextStream

__all__ = [
    "DRAFTS",
    "DecodeStream",
    "DemoOptions",
    "GenerateOptions",
    "Sample",
    "TARGETS",
    "Target",
    "TextStream",
    "format_report",
    "generate",
    "iter_generate",
    "load_draft",
    "load_target",
    "run_demo",
]
