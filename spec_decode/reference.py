"""Old import path of ``spec_decode.core.reference``: the same module under its former name."""

import sys

from spec_decode.core import reference as _module

sys.modules[__name__] = _module
