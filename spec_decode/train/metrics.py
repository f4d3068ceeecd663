"""Quality of a trained T5: greedy predictions with the library's decoder, BLEU and ROUGE.

    predictions = predict(config, params, vocabulary, inputs, "translation_en_de",
                          batch_size=64, max_new_tokens=128)
    score("translation_en_de", predictions, references)         # {'bleu': ..}
    score("summarization", predictions, references)  # {'rouge1', 'rouge2', 'rougeLsum'}
    score(task, baseline_predictions(task, inputs), references)      # the floor to beat

BLEU is sacrebleu's ``corpus_bleu`` (its default 13a tokenizer); ROUGE is Google's
``rouge-score`` with the Porter stemmer, the mean F-measure of rouge1, rouge2 and rougeLsum over
the examples. Both are on a 0-100 scale and need the 'paper' extra
(``pip install 'spec_decode[paper]'``).

The baselines need no model: translation copies the English input (names, commands and numbers
often survive translation unchanged), summarization takes the document's first words (the
synopsis often restates the description's opening).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from spec_decode.train.data import TASKS

ROUGE_TYPES = ("rouge1", "rouge2", "rougeLsum")


def predict(
    model_config,
    params,
    vocabulary,
    inputs: Sequence[str],
    task: str,
    *,
    batch_size: int,
    max_new_tokens: int,
    max_input_length: int = 512,
) -> list[str]:
    """Greedy (T = 0) outputs for the task's raw inputs, decoded to text, in input order.

    Each input gets the task's prefix (unless it already starts with it), is cut to
    ``max_input_length - 1`` tokens and ends with EOS, as in training. Batches are padded to
    ``batch_size`` rows and one input width, so the decode compiles once.
    ``autoregressive_decode`` over ``T5Decoding``: the decoder starts from T5's BOS (0) and
    stops at EOS or after ``max_new_tokens``.
    """
    from spec_decode.core.functional import autoregressive_decode
    from spec_decode.core.sampling import SamplingConfig
    from spec_decode.models.t5 import T5Decoding, make_t5_inputs

    _check_task(task)
    for name, value, least in (("batch_size", batch_size, 1), ("max_new_tokens", max_new_tokens, 1),
                               ("max_input_length", max_input_length, 2)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name}={value!r} is not allowed: it must be an int >= {least}")
    prefix, eos = TASKS[task].prefix, vocabulary.eos_id
    rows = [
        [*vocabulary.encode(x if x.startswith(prefix) else prefix + x)[: max_input_length - 1], eos]
        for x in inputs
    ]
    if not rows:
        return []
    S = max(len(r) for r in rows)
    model = T5Decoding(model_config)
    outputs: list[str] = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        tokens = np.zeros((batch_size, S), np.int32)  # [B, S]
        tokens[:, 0] = eos  # padding rows are a lone EOS, never an empty (all-masked) source
        for b, ids in enumerate(chunk):
            tokens[b, : len(ids)] = ids
        result = autoregressive_decode(
            model, make_t5_inputs(params, tokens), np.zeros((batch_size, 1), np.int32),
            max_new_tokens=max_new_tokens, sampling=SamplingConfig(temperature=0.0), eos_id=eos,
        )  # fmt: skip
        generated, lengths = np.asarray(result.tokens), np.asarray(result.lengths)
        outputs += [
            vocabulary.decode(generated[b, : lengths[b]].tolist()) for b in range(len(chunk))
        ]
    return outputs


def score(task: str, predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """{'bleu'} for translation_*, {'rouge1', 'rouge2', 'rougeLsum'} for summarization (0-100)."""
    _check_task(task)
    if len(predictions) != len(references) or not predictions:
        raise ValueError(
            f"predictions ({len(predictions)}) and references ({len(references)}) are not "
            "allowed: they must be equally long and non-empty"
        )
    if task.startswith("translation"):
        sacrebleu = _extra("sacrebleu")
        return {"bleu": float(sacrebleu.corpus_bleu(list(predictions), [list(references)]).score)}
    rouge_scorer = _extra("rouge_score.rouge_scorer")
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    scores = [scorer.score(r, p) for p, r in zip(predictions, references, strict=True)]
    return {k: 100 * float(np.mean([s[k].fmeasure for s in scores])) for k in ROUGE_TYPES}


def baseline_predictions(task: str, inputs: Sequence[str], words: int = 7) -> list[str]:
    """No model: the input itself (translation) or its first ``words`` words (summarization)."""
    _check_task(task)
    if isinstance(words, bool) or not isinstance(words, int) or words < 1:
        raise ValueError(f"words={words!r} is not allowed: it must be an int >= 1")
    prefix = TASKS[task].prefix
    raw = [x[len(prefix) :] if prefix and x.startswith(prefix) else x for x in inputs]
    if task.startswith("translation"):
        return raw
    return [" ".join(x.split()[:words]) for x in raw]


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"task={task!r} is not allowed: it must be one of {sorted(TASKS)}")


def _extra(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"{module.split('.')[0]} is needed for quality scores: pip install "
            "'spec_decode[paper]' (sacrebleu and rouge-score)"
        ) from error
