"""``speculative_sample``: speculative decoding behind T5X's ``DecodeFnCallable`` interface.

T5X's ``EncoderDecoderModel`` calls its ``decode_fn`` with ``inputs, cache, tokens_to_logits,
eos_id, num_decodes, decode_rng, cache_offset`` and sampling keywords (``temperature, topk,
topp, max_decode_steps, ...``) and expects ``(decodes [B, num_decodes, L], scores [B,
num_decodes])``, sorted so the best decode is last. ``speculative_sample`` takes the same
keywords with ``temperature_sample``'s meaning and returns the same values, but decodes with
the core's ``SpeculativeDecoder``.

The target and the draft enter by keyword, each as ``(model, params)`` of the model contract
(for T5: ``(T5Decoding(config), make_t5_inputs(params, encoder_input_tokens))``); bind them with
``functools.partial`` or let ``SpeculativeEncoderDecoderModel`` pass them. T5X's ``cache`` and
``tokens_to_logits`` are accepted and ignored: they decode one token per call through a flax
cache with one index for the batch, whereas verification scores gamma + 1 tokens per target
call, each row at its own cache position, through the contract's ``extend``.

Decoder tokens follow T5X: ``inputs`` are targets shifted right, position 0 is BOS (0), and the
non-zero entries after it are a forced prompt. The output holds the prompt, then the generated
tokens, then zeros after EOS (or from position L on):

    inputs  (L = 7)   0  5  6  0  0  0  0        prompt [5, 6], BOS at position 0
    decoded            5  6  a  b  1  0  0        a, b generated, EOS = 1, then zeros
"""

from __future__ import annotations

import functools
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from spec_decode.core.contract import LanguageModel, Params
from spec_decode.core.decoder import DecoderParams, SpeculativeDecoder
from spec_decode.core.policy import GammaPolicy
from spec_decode.core.sampling import SamplingConfig, adjusted_probs
from spec_decode.models.t5 import T5DecodeParams

# T5X treats temperatures at or below this as argmax (decoding.MIN_TEMPERATURE).
MIN_TEMPERATURE = 1e-4
STATISTICS = (
    "accepted_tokens", "examined_drafts", "target_calls", "draft_calls", "generated_tokens"
)  # fmt: skip


def t5x_sampling(temperature: Any = 1.0, topk: Any = 1, topp: Any = 0.0) -> SamplingConfig:
    """T5X's ``temperature_sample`` settings as the core's ``SamplingConfig``.

    T5X: a temperature <= 1e-4 is argmax whatever topk and topp; otherwise logits are divided
    by the temperature, then ``topk > 0`` keeps the k largest (ties kept) and ``topp > 0`` keeps
    the smallest set of mass >= topp; at most one of them may be non-zero. Its default topk=1
    is therefore top-1 sampling: greedy up to ties.
    """
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise ValueError(
            f"temperature={temperature!r} is not allowed: it must be a Python number >= 0 "
            "(per-example temperature arrays are not supported: the sampling settings are "
            "static in the compiled decoder)"
        )
    if isinstance(topk, bool) or not isinstance(topk, numbers.Integral) or topk < 0:
        raise ValueError(f"topk={topk!r} is not allowed: it must be an integer >= 0 (0 = off)")
    if isinstance(topp, bool) or not isinstance(topp, numbers.Real) or not 0 <= topp <= 1:
        raise ValueError(f"topp={topp!r} is not allowed: it must be a number in [0, 1] (0 = off)")
    if topk and topp:
        raise ValueError(
            f"topk={topk!r} and topp={topp!r} are not allowed together: as in T5X, at most one "
            "of them may be non-zero"
        )
    if temperature < 0:
        raise ValueError(f"temperature={temperature!r} is not allowed: it must be >= 0")
    if temperature <= MIN_TEMPERATURE:
        return SamplingConfig(temperature=0.0)
    return SamplingConfig(temperature=float(temperature), top_k=int(topk), top_p=float(topp or 1))


def speculative_sample(
    inputs: jax.Array,  # [B, L] int32: decoder prompt, 0 = BOS / to generate
    cache: Any = None,
    tokens_to_logits: Any = None,
    eos_id: int = 1,
    decode_rng: jax.Array | None = None,
    num_decodes: int = 1,
    temperature: float = 1.0,
    topk: int = 1,
    topp: float = 0.0,
    cache_offset: int = 0,
    initial_index: Any = None,
    max_decode_steps: int | None = None,
    max_decode_steps_hard_limit: int | None = None,
    rescale_log_probs: bool = True,
    state_callback_fn: Any = None,
    logit_callback_fn: Any = None,
    *,
    target: tuple[LanguageModel, Params] | None = None,
    draft: tuple[LanguageModel, Params] | None = None,
    gamma: int | str = 4,
    gamma_policy: GammaPolicy | None = None,
    max_gamma: int = 6,
    return_statistics: bool = False,
    mesh: jax.sharding.Mesh | None = None,
    rules: Any = None,
):
    """T5X's ``temperature_sample`` interface and semantics, decoded speculatively.

    Args:
      inputs: [B, L] decoder prompt (targets shifted right): position 0 is BOS, each row's
        non-zero entries after it are a forced prompt; L is the output length.
      cache, tokens_to_logits, cache_offset, initial_index: accepted for T5X and ignored; the
        caches are built through the contract from ``target`` and ``draft`` (any prompt in
        ``inputs`` is prefilled there, so a T5X ``initial_index`` adds nothing).
      eos_id: ends a row; the positions after it are 0.
      decode_rng: one key (T5X's ``PRNGKey`` or a typed key); default ``PRNGKey(0)``.
      num_decodes: independent samples per row (rows repeated in place, T5X's order).
      temperature, topk, topp: as in T5X (see ``t5x_sampling``): Python numbers, static.
      max_decode_steps: at most this many generated tokens per row (a Python int <= L);
        ``max_decode_steps_hard_limit`` clips it.
      rescale_log_probs: scores use the adjusted (temperature, top-k/p) target distribution,
        as T5X does by default (all 0 for argmax); False uses the raw target log-softmax.
      state_callback_fn, logit_callback_fn: must be None (a per-step hook cannot see the
        tokens that verification decides gamma at a time).
      target: (model, params) that the samples are distributed as; required.
      draft: (model, params) proposing gamma tokens per round; required, same vocabulary.
      gamma: draft tokens per round, or "auto": each round's gamma in 0..max_gamma chosen by
        ``gamma_policy`` (a ``spec_decode.core.policy.GammaPolicy``); without one, the round
        costs are measured here once per models and batch size (not possible inside a jit:
        pass the policy there).
      return_statistics: also return a dict of [B, num_decodes] int32 arrays
        ``accepted_tokens`` (draft tokens that verification accepted, over the row's rounds),
        ``examined_drafts`` (accepted plus one per rejection: alpha is accepted / examined),
        ``target_calls``, ``draft_calls`` (counted while the row was active, the prefill not
        included) and ``generated_tokens`` (in the output, EOS included). A row cut at its
        length limit may have accepted a few tokens past it.
      mesh, rules: decode on this device mesh with these logical-axis rules (params placed by
        ``spec_decode.sharding``); the caches and loop state are then pinned to their declared
        shardings. None: one device.

    Returns:
      decodes [B, num_decodes, L] int32 and scores [B, num_decodes] float32 (sum of the target
      log-probabilities of the generated tokens), sorted ascending by score along num_decodes
      (the best last); then the statistics when asked for.
    """
    del cache, tokens_to_logits, cache_offset, initial_index  # see the docstring
    (target_model, target_params), (draft_model, draft_params) = _check_pair(target, draft)
    sampling = t5x_sampling(temperature, topk, topp)
    if state_callback_fn is not None or logit_callback_fn is not None:
        raise ValueError(
            "state_callback_fn / logit_callback_fn are not supported: speculative decoding "
            "verifies gamma tokens per target call, not one token per step"
        )
    batch, length = _check_inputs(inputs)
    _check_count("num_decodes", num_decodes)
    if gamma != "auto":
        _check_count("gamma", gamma)
    steps = _max_steps(max_decode_steps, max_decode_steps_hard_limit, length)
    if not isinstance(eos_id, numbers.Integral) or not 0 <= eos_id < target_model.vocab_size:
        raise ValueError(
            f"eos_id={eos_id!r} is not allowed: it must be an integer in "
            f"[0, {target_model.vocab_size})"
        )

    # Each row generates into the L - n_b slots after its prompt; the compiled loop needs one
    # static bound, so it uses the most any row can take and cuts each row afterwards.
    shortest = _check_prompts(inputs)
    max_new = min(steps, length - (0 if shortest is None else shortest))
    prompt, num_prompt = _prepare(jnp.asarray(inputs), num_decodes)  # [B', L], [B']
    if num_decodes > 1:
        target_params = repeat_rows(target_params, num_decodes)
        draft_params = repeat_rows(draft_params, num_decodes)
    key = jax.random.PRNGKey(0) if decode_rng is None else decode_rng
    if gamma == "auto" and gamma_policy is None:
        models = (target_model, target_params, draft_model, draft_params)
        gamma_policy = _measured_policy(*models, prompt.shape[0], max_gamma, sampling)
    decoder = SpeculativeDecoder(
        target_model, draft_model, gamma, max_new_tokens=max_new, sampling=sampling,
        eos_id=int(eos_id), pad_id=0, mesh=mesh, rules=rules,
        policy=gamma_policy if gamma == "auto" else None,
    )  # fmt: skip
    result = decoder.run(DecoderParams(target_params, draft_params), prompt, num_prompt + 1, key)
    decodes, generated = _assemble(prompt, num_prompt, result.tokens, result.lengths, steps)
    scores = sequence_scores(
        target_model, target_params, decodes, num_prompt, generated, sampling, rescale_log_probs
    )
    decodes, scores, stats = _regroup(decodes, scores, generated, result, num_decodes)
    if return_statistics:
        return decodes, scores, stats
    return decodes, scores


def repeat_rows(params: Params, times: int) -> Params:
    """Params for a batch whose rows are each repeated ``times`` in place.

    Only ``T5DecodeParams`` carry per-row data (the encoder tokens); other params are shared by all
    rows and returned unchanged.
    """
    if isinstance(params, T5DecodeParams):
        return params.replace(
            encoder_input_tokens=jnp.repeat(params.encoder_input_tokens, times, axis=0)
        )
    return params


def sequence_scores(
    model: LanguageModel,
    params: Params,
    decodes: jax.Array,  # [B, L]
    num_prompt: jax.Array,  # [B]
    generated: jax.Array,  # [B]
    sampling: SamplingConfig,
    rescale_log_probs: bool = True,
) -> jax.Array:
    """Sum of the target log-probabilities of each row's generated tokens: [B] float32.

    Prompt positions and positions after EOS do not count (as in T5X). With
    ``rescale_log_probs`` the probabilities are the adjusted ones the tokens were drawn from,
    so argmax scores are 0 and no target call is needed.
    """
    if rescale_log_probs and sampling.greedy:
        return jnp.zeros(decodes.shape[:1], jnp.float32)
    return _scores_jit(
        model, params, decodes, num_prompt, generated, sampling=sampling, rescale=rescale_log_probs
    )


@functools.partial(jax.jit, static_argnums=0, static_argnames=("sampling", "rescale"))
def _scores_jit(model, params, decodes, num_prompt, generated, *, sampling, rescale):
    batch, length = decodes.shape
    bos = jnp.zeros((batch, 1), jnp.int32)
    decoder_inputs = jnp.concatenate([bos, decodes[:, :-1]], axis=1)  # shifted right
    cache = model.init_cache(params, batch, length)
    logits, _ = model.extend(params, decoder_inputs, cache)  # [B, L, V]
    if rescale:
        log_probs = jnp.log(adjusted_probs(logits, sampling))
    else:
        log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    token_log_probs = jnp.take_along_axis(log_probs, decodes[..., None], axis=-1)[..., 0]
    offset = jnp.arange(length)[None, :] - num_prompt[:, None]  # index among generated tokens
    counted = (offset >= 0) & (offset < generated[:, None])
    return jnp.sum(jnp.where(counted, token_log_probs, 0.0), axis=1)


@functools.partial(jax.jit, static_argnums=1)
def _prepare(inputs: jax.Array, num_decodes: int) -> tuple[jax.Array, jax.Array]:
    """Prompts [B * num_decodes, L] (BOS 0 first, rows repeated in place) and their lengths."""
    prompt = inputs.astype(jnp.int32).at[:, 0].set(0)  # T5X starts from BOS 0 whatever is there
    num_prompt = jnp.sum(prompt[:, 1:] != 0, axis=1).astype(jnp.int32)
    return jnp.repeat(prompt, num_decodes, axis=0), jnp.repeat(num_prompt, num_decodes, axis=0)


@functools.partial(jax.jit, static_argnums=4)
def _assemble(prompt, num_prompt, tokens, lengths, steps: int):
    """Output rows [B, L] (the prompt inputs[1:], generated tokens, zeros), generated [B]."""
    batch, length = prompt.shape
    generated = jnp.minimum(lengths, jnp.minimum(length - num_prompt, steps))  # T5X's limit
    positions = jnp.arange(length)[None, :]
    forced = jnp.concatenate([prompt[:, 1:], jnp.zeros((batch, 1), jnp.int32)], axis=1)
    offset = positions - num_prompt[:, None]
    new = jnp.take_along_axis(tokens, jnp.clip(offset, 0, tokens.shape[1] - 1), axis=1)
    out = jnp.where((offset >= 0) & (offset < generated[:, None]), new, 0)
    return jnp.where(offset < 0, forced, out).astype(jnp.int32), generated


@functools.partial(jax.jit, static_argnums=4)
def _regroup(decodes, scores, generated, result, num_decodes: int):
    """[B * num_decodes, ...] -> [B, num_decodes, ...], sorted by score (ascending, best last)."""
    counts = result.row_counts()  # the one definition (spec_decode.core.stats)
    counts = (
        counts.accepted_tokens, counts.examined_drafts, counts.target_calls, counts.draft_calls,
        generated,
    )  # fmt: skip
    stats = dict(zip(STATISTICS, counts, strict=True))
    batch = scores.shape[0] // num_decodes
    order = jnp.argsort(scores.reshape(batch, num_decodes), axis=1)

    def regroup(x):
        x = x.reshape(batch, num_decodes, *x.shape[1:])
        return jnp.take_along_axis(x, order.reshape(order.shape + (1,) * (x.ndim - 2)), axis=1)

    return regroup(decodes), regroup(scores), jax.tree.map(regroup, stats)


def _measured_policy(target, target_params, draft, draft_params, batch, max_gamma, sampling):
    if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(target_params)):
        raise ValueError(
            "gamma='auto' with gamma_policy=None is not allowed inside jax.jit: the round costs "
            "are measured by running the models; pass gamma_policy="
            "spec_decode.bench.auto_policy(...) measured outside the jit"
        )
    from spec_decode.bench.costs import auto_policy

    return auto_policy(
        target, target_params, draft, draft_params, batch=batch, max_gamma=max_gamma,
        sampling=sampling,
    )  # fmt: skip


def _check_prompts(inputs) -> int | None:
    """The shortest prompt (non-zero tokens after BOS), checking each is contiguous; None when
    ``inputs`` is traced (inside a caller's jit)."""
    if isinstance(inputs, jax.core.Tracer):
        return None
    nonzero = np.asarray(inputs)[:, 1:] != 0
    counts = nonzero.sum(axis=1)
    expected = np.arange(nonzero.shape[1])[None, :] < counts[:, None]
    bad = np.nonzero((nonzero != expected).any(axis=1))[0]
    if bad.size:
        raise ValueError(
            f"inputs row {int(bad[0])} = {np.asarray(inputs)[bad[0]].tolist()} is not allowed: "
            "its prompt (the non-zero tokens after BOS) must be contiguous, followed only by "
            "zeros"
        )
    return int(counts.min())


def _check_pair(target, draft):
    pairs = []
    for name, pair in (("target", target), ("draft", draft)):
        if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], LanguageModel)):
            raise ValueError(
                f"{name}={pair!r} is not allowed: it must be a (model, params) pair whose model "
                "implements spec_decode.LanguageModel, e.g. (T5Decoding(config), "
                "make_t5_inputs(params, encoder_input_tokens)); T5X's tokens_to_logits cannot "
                "verify several tokens per call"
            )
        pairs.append(pair)
    return pairs


def _check_inputs(inputs) -> tuple[int, int]:
    shape = np.shape(inputs)
    dtype = inputs.dtype if hasattr(inputs, "dtype") else np.asarray(inputs).dtype
    if len(shape) != 2 or shape[0] < 1 or shape[1] < 1 or not np.issubdtype(dtype, np.integer):
        raise ValueError(
            f"inputs with shape={shape} and dtype={dtype} is not allowed: it must be an integer "
            "array [B, L] with B, L >= 1 (decoder prompt tokens, 0 = BOS / to generate)"
        )
    return shape


def _check_count(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}={value!r} is not allowed: it must be an integer >= 1")


def _max_steps(max_decode_steps, hard_limit, length: int) -> int:
    """The per-row generation limit as a Python int (L when neither is given)."""
    for name, value in (
        ("max_decode_steps", max_decode_steps),
        ("max_decode_steps_hard_limit", hard_limit),
    ):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, numbers.Integral)
        ):
            raise ValueError(
                f"{name}={value!r} is not allowed: it must be None or a Python int (the "
                "compiled decoder's length is static)"
            )
    if max_decode_steps is None:
        return length
    if hard_limit is not None and hard_limit > 0:
        max_decode_steps = min(max_decode_steps, hard_limit)
    if not 1 <= max_decode_steps <= length:
        raise ValueError(
            f"max_decode_steps={max_decode_steps!r} is not allowed: it must be in [1, "
            f"{length}] (inputs.shape[1]; T5X cannot decode more steps than the length)"
        )
    return int(max_decode_steps)
