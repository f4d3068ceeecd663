"""Old import path of ``spec_decode.core.validation``: the same module under its former name."""

import sys

from spec_decode.core import validation as _module

sys.modules[__name__] = _module
