"""Drafts, all satisfying the model contract: model-free ones (n-gram count tables, prompt
lookup), the small neural draft that shares the target's embedding table (``neural``) and the
EAGLE-style draft that reads the target's features (``eagle``)."""

from spec_decode.drafts._common import LengthsCache, ModelFreeDraft
from spec_decode.drafts.eagle import EagleDraft, eagle_config, init_eagle
from spec_decode.drafts.neural import SharedEmbeddingDraft, init_draft, with_head_rows
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
    "EagleDraft",
    "LengthsCache",
    "ModelFreeDraft",
    "PromptLookupCache",
    "PromptLookupDraft",
    "SharedEmbeddingDraft",
    "SparseBigramDraft",
    "UnigramDraft",
    "count_ngrams",
    "eagle_config",
    "init_eagle",
    "init_draft",
    "ngram_params_from_tokens",
    "sparse_bigram_params_from_tokens",
    "with_head_rows",
]
