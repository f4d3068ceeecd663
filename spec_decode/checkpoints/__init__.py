"""Old import path of ``spec_decode.formats.t5x``: the same package and submodules."""

from spec_decode._aliases import alias_package

alias_package(__name__, "spec_decode.formats.t5x", ("legacy", "loading", "orbax_format", "tree"))
