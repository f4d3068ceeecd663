"""Old import path of ``spec_decode.drafts.neural``: the same module under its former name."""

import sys

from spec_decode.drafts import neural as _module

sys.modules[__name__] = _module
