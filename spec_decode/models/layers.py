"""Old import path of ``spec_decode.models.llama.layers``: the same module under its former name."""

import sys

from spec_decode.models.llama import layers as _module

sys.modules[__name__] = _module
