"""Model-free drafts: n-gram count tables and prompt lookup, all satisfying the model contract."""

from spec_decode.drafts._common import LengthsCache
from spec_decode.drafts.ngram import (
    BigramDraft,
    UnigramDraft,
    count_ngrams,
    ngram_params_from_tokens,
)
from spec_decode.drafts.prompt_lookup import PromptLookupCache, PromptLookupDraft
from spec_decode.drafts.sparse_bigram import SparseBigramDraft, sparse_bigram_params_from_tokens

__all__ = [
    "BigramDraft",
    "LengthsCache",
    "PromptLookupCache",
    "PromptLookupDraft",
    "SparseBigramDraft",
    "UnigramDraft",
    "count_ngrams",
    "ngram_params_from_tokens",
    "sparse_bigram_params_from_tokens",
]
