"""Old import path of ``spec_decode.formats.hf_llama``: the same module under its former name."""

import sys

from spec_decode.formats import hf_llama as _module

sys.modules[__name__] = _module
