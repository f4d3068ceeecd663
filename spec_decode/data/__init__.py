"""Real data built on this machine from what it has (no downloads, nothing committed).

apt's Translation lists (Debian descriptions: en-de / en-fr pairs, long -> synopsis), gettext
catalogs (English-German UI strings), Python sources (docstrings), deterministic group splits,
and one cached corpus on disk. The decoding core never imports this package; it needs no JAX.
"""

from spec_decode.data.corpus import CorpusConfig, build_corpus, read_text_documents
from spec_decode.data.debian import (
    Description,
    Pair,
    descriptions,
    summary_pairs,
    translation_pairs,
)
from spec_decode.data.docstrings import Docstring, collect_docstrings
from spec_decode.data.gettext_pairs import ui_pairs
from spec_decode.data.splits import split_by_group, split_of

__all__ = [
    "CorpusConfig",
    "Description",
    "Docstring",
    "Pair",
    "build_corpus",
    "descriptions",
    "collect_docstrings",
    "ui_pairs",
    "read_text_documents",
    "split_by_group",
    "split_of",
    "summary_pairs",
    "translation_pairs",
]
