"""Old import path of ``spec_decode.formats.gguf.reader``: the same module under its former name."""

import sys

from spec_decode.formats.gguf import reader as _module

sys.modules[__name__] = _module
