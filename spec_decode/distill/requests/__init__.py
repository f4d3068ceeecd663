"""User requests that look like what users ask, from real text on this machine (issue 12).

Categories (``builder.CATEGORIES``), each a named source with several phrasings: questions
about Debian packages, translation of UI strings and descriptions, code from docstrings,
arithmetic and unit conversions made by code, and everyday requests over real nouns. A
held-out split shares no group, no held-out phrasing and no held-out category with training.

    inputs = load_inputs()                       # apt lists, gettext, Python, tzdata
    requests = build_requests(inputs, BuildConfig(seed=0), exclude=demo.PROMPTS)
    requests.train, requests.by_category("held_out")
"""

from spec_decode.distill.requests.builder import (
    CATEGORIES,
    BuildConfig,
    RequestSet,
    build_requests,
    is_held_out,
)
from spec_decode.distill.requests.inputs import InputConfig, Inputs, load_inputs
from spec_decode.distill.requests.request import Category, Item, Phrasing, Request, normalise

__all__ = [
    "CATEGORIES",
    "BuildConfig",
    "Category",
    "InputConfig",
    "Inputs",
    "Item",
    "Phrasing",
    "Request",
    "RequestSet",
    "build_requests",
    "is_held_out",
    "load_inputs",
    "normalise",
]
