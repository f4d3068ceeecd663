"""Old import path of ``spec_decode.models.t5``: the same package and submodules under the old name.

``spec_decode.t5.layers`` and the others are registered too, so ``import spec_decode.t5.X`` gives
the very module ``spec_decode.models.t5.X`` (not a second copy with its own classes).
"""

import importlib
import sys

from spec_decode.models import t5 as _package

_SUBMODULES = (
    "attention", "blocks", "cache", "config", "decoding_model", "layers", "network", "scoring",
)  # fmt: skip

for _name in _SUBMODULES:
    sys.modules[f"{__name__}.{_name}"] = importlib.import_module(f"{_package.__name__}.{_name}")
sys.modules[__name__] = _package
