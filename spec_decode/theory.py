"""Old import path of ``spec_decode.core.theory``: the same module under its former name."""

import sys

from spec_decode.core import theory as _module

sys.modules[__name__] = _module
