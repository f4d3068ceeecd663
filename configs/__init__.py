"""Gin configs shipped with spec_decode (installed as ``spec_decode.configs``).

See ``spec_decode.t5x_compat.gin_support``: ``configs_dir()`` finds this directory and puts it
on gin's search path, so includes such as ``include 't5_1_1/base.gin'`` resolve wherever it is
installed.
"""
