"""Old import path of ``spec_decode.models.t5``: the same package and submodules."""

from spec_decode._aliases import alias_package

alias_package(
    __name__,
    "spec_decode.models.t5",
    ("attention", "blocks", "cache", "config", "decoding_model", "layers", "network", "scoring"),
)
