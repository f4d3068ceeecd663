"""Speculative and autoregressive decoding, each one jitted ``lax.while_loop``.

Dataflow of one speculative round (every row at once, each at its own length):

    prefill   both caches hold prompt[:len-1]; the last prompt token is pending
    draft     gamma draft calls: x_1..x_gamma ~ q_1..q_gamma          (steps.draft_step)
    verify    one target call over [pending, x_1..x_gamma]: p_1..p_{gamma+1}
    accept    n accepted drafts and one more token t                 (accept_reject)
    commit    emit x_1..x_n, t; cut at EOS or max_new_tokens; done rows freeze
    rollback  target lengths += n + 1; draft lengths follow (pure: set lengths, no recompute)

Cache invariant between rounds: the target cache holds every committed token except the newest
one (``pending[:, 1]``); the draft cache holds the same minus ``num_pending - 1`` tokens.

On a device mesh (``mesh=``, see ``spec_decode.sharding``) the params come in already sharded;
the loop pins the layout of what it creates: rows of the loop state on 'data' and each cache by
its model's ``cache_logical_axes()``, so every step runs where the weights live and none of them
is gathered.
"""

from __future__ import annotations

import functools
from dataclasses import fields

import jax
import jax.numpy as jnp

from spec_decode import sharding
from spec_decode.core import validation
from spec_decode.core.contract import LanguageModel, Params, rollback
from spec_decode.core.keys import round_keys, row_keys
from spec_decode.core.rejection import accept_reject
from spec_decode.core.sampling import SamplingConfig, adjusted_probs, sample_from
from spec_decode.core.state import DecodeResult, DecodeState
from spec_decode.core.steps import draft_step, parallel_verify


def speculative_decode(
    target: LanguageModel,
    target_params: Params,
    draft: LanguageModel,
    draft_params: Params,
    prompt_tokens: jax.Array,  # [B, P] int32, right-padded
    prompt_lengths: jax.Array | None = None,  # [B] int32 in 1..P (default: all P)
    key: jax.Array | None = None,  # one key, or [B] keys for batch-independent rows
    *,
    gamma: int = 4,
    max_new_tokens: int = 32,
    sampling: SamplingConfig = SamplingConfig(),
    eos_id: int | None = None,
    pad_id: int = 0,
    mesh: jax.sharding.Mesh | None = None,
    rules: sharding.Rules | None = None,
) -> DecodeResult:
    """Generate up to ``max_new_tokens`` per row, distributed exactly as the target would.

    Rows advance independently: each keeps its own accepted prefix every round (no row waits
    for another or is cut to the batch minimum), stops at its own EOS, and a row's tokens depend
    only on its prompt and its key, not on the other rows.

    With ``mesh`` (params placed by ``spec_decode.sharding``), caches and per-row state are
    laid out by the logical axis ``rules`` (default ``sharding.STANDARD_RULES``).
    """
    validation.check_int("gamma", gamma, 1)
    validation.check_vocab(target, draft)
    key = _validate_common(
        (target, draft), prompt_tokens, prompt_lengths, key, max_new_tokens, sampling, eos_id
    )
    return _speculative_jit(
        target, target_params, draft, draft_params, jnp.asarray(prompt_tokens, jnp.int32),
        _lengths(prompt_tokens, prompt_lengths), key, gamma=gamma, max_new_tokens=max_new_tokens,
        sampling=sampling, eos_id=eos_id, pad_id=pad_id, **_mesh_args(mesh, rules),
    )  # fmt: skip


def autoregressive_decode(
    model: LanguageModel,
    params: Params,
    prompt_tokens: jax.Array,  # [B, P] int32, right-padded
    prompt_lengths: jax.Array | None = None,  # [B]
    key: jax.Array | None = None,
    *,
    max_new_tokens: int = 32,
    sampling: SamplingConfig = SamplingConfig(),
    eos_id: int | None = None,
    pad_id: int = 0,
    mesh: jax.sharding.Mesh | None = None,
    rules: sharding.Rules | None = None,
) -> DecodeResult:
    """The baseline: one target call per token, same loop style, same prefill, same stopping."""
    key = _validate_common(
        (model,), prompt_tokens, prompt_lengths, key, max_new_tokens, sampling, eos_id
    )
    return _autoregressive_jit(
        model, params, jnp.asarray(prompt_tokens, jnp.int32),
        _lengths(prompt_tokens, prompt_lengths), key, max_new_tokens=max_new_tokens,
        sampling=sampling, eos_id=eos_id, pad_id=pad_id, **_mesh_args(mesh, rules),
    )  # fmt: skip


def _validate_common(models, prompt_tokens, prompt_lengths, key, max_new_tokens, sampling, eos_id):
    validation.check_int("max_new_tokens", max_new_tokens, 1)
    validation.check_sampling(sampling)
    validation.check_eos(eos_id, models[0].vocab_size)
    batch, _, _ = validation.check_prompts(
        prompt_tokens, prompt_lengths, max_new_tokens, validation.model_max_length(*models)
    )
    return row_keys(jax.random.key(0) if key is None else key, batch)


def _mesh_args(mesh, rules) -> dict:
    """The static ``mesh`` and ``rules`` of the jitted loops (rules only matter with a mesh)."""
    if mesh is not None and not isinstance(mesh, jax.sharding.Mesh):
        raise ValueError(
            f"mesh={mesh!r} is not allowed: it must be None or a jax.sharding.Mesh "
            "(spec_decode.sharding.make_mesh builds one)"
        )
    rules = sharding.check_rules(rules)
    return {"mesh": mesh, "rules": None if mesh is None else rules}


def _on_mesh(state: DecodeState, target, draft, mesh, rules) -> DecodeState:
    """Pin the loop state's layout: per-row arrays split over rows, caches by logical axes.

    The while loop carries one layout for its whole life; pinning the state it starts from
    and each round's result keeps XLA from picking one that gathers the caches.
    """
    if mesh is None:
        return state
    not_rows = ("step", "target_cache", "draft_cache")
    rows = {f.name: getattr(state, f.name) for f in fields(state) if f.name not in not_rows}
    return state.replace(
        **sharding.constrain_rows(rows, mesh, rules),
        target_cache=sharding.constrain_cache(target, state.target_cache, mesh, rules),
        draft_cache=sharding.constrain_cache(draft, state.draft_cache, mesh, rules),
    )


def _lengths(prompt_tokens, prompt_lengths) -> jax.Array:
    batch, width = jnp.shape(prompt_tokens)
    if prompt_lengths is None:
        return jnp.full((batch,), width, jnp.int32)
    return jnp.asarray(prompt_lengths, jnp.int32)


def prefill(model, params, prompt_tokens, prompt_lengths, cache_length: int, mesh=None, rules=None):
    """A cache holding each row's prompt except its last token (which becomes pending)."""
    batch, width = prompt_tokens.shape
    cache = model.init_cache(params, batch, cache_length)
    if mesh is not None:
        cache = sharding.constrain_cache(model, cache, mesh, rules)
    if width > 1:
        # Rows shorter than P also write their padding; the rollback below discards it.
        _, cache = model.extend(params, prompt_tokens[:, : width - 1], cache)
    return rollback(cache, prompt_lengths - 1)


def initial_state(target_cache, draft_cache, prompt_tokens, prompt_lengths, keys, gamma, max_new):
    batch = prompt_tokens.shape[0]
    last = jnp.take_along_axis(prompt_tokens, (prompt_lengths - 1)[:, None], axis=1)  # [B, 1]
    zeros = jnp.zeros((batch,), jnp.int32)
    return DecodeState(
        step=jnp.zeros((), jnp.int32),
        keys=keys,
        tokens=jnp.zeros((batch, max_new + gamma + 1), jnp.int32),
        num_generated=zeros,
        done=jnp.zeros((batch,), bool),
        pending=jnp.concatenate([last, last], axis=1),
        num_pending=jnp.ones((batch,), jnp.int32),
        target_cache=target_cache,
        draft_cache=draft_cache,
        target_calls=zeros,
        draft_calls=zeros,
        accepted_per_round=jnp.full((batch, max_new), -1, jnp.int32),
    )


def commit(state: DecodeState, num_accepted, next_token, draft_tokens, *, max_new_tokens, eos_id):
    """Emit x_1..x_n, t per active row, stop rows at EOS / max_new_tokens, roll caches back.

    Called after verification: the target cache has grown by K + 1 and the draft cache by
    num_pending + K - 1 for every row, active or not; this sets the lengths that the invariant
    asks for (frozen rows go back to where they were).
    """
    batch, k = draft_tokens.shape
    active = ~state.done
    pos = jnp.arange(k + 1)
    block = jnp.concatenate([draft_tokens, next_token[:, None]], axis=1)  # [B, K+1]
    block = jnp.where(pos < num_accepted[:, None], block, next_token[:, None])
    emit = num_accepted + 1  # [B]
    stop = jnp.zeros((batch,), bool)
    if eos_id is not None:
        is_eos = (block == eos_id) & (pos < emit[:, None])
        stop = is_eos.any(axis=1)
        emit = jnp.where(stop, jnp.argmax(is_eos, axis=1) + 1, emit)
    emit = jnp.minimum(emit, max_new_tokens - state.num_generated)
    write = jax.vmap(lambda buf, blk, at: jax.lax.dynamic_update_slice(buf, blk, (at,)))
    written = write(state.tokens, block, state.num_generated)
    tokens = jnp.where(active[:, None], written, state.tokens)
    num_generated = state.num_generated + jnp.where(active, emit, 0)

    target_before = state.target_cache.lengths - (k + 1)
    target_lengths = jnp.where(active, target_before + num_accepted + 1, target_before)
    all_accepted = num_accepted == k
    num_pending = jnp.where(active, jnp.where(all_accepted, 2, 1), state.num_pending)
    pending = jnp.stack([draft_tokens[:, -1] if k else next_token, next_token], axis=1)
    pending = jnp.where(active[:, None], pending, state.pending)
    draft_cache = state.draft_cache
    if draft_cache is not None:
        draft_before = draft_cache.lengths - (state.num_pending + k - 1)
        draft_lengths = jnp.where(active, target_lengths - (num_pending - 1), draft_before)
        draft_cache = rollback(draft_cache, draft_lengths)
    accepted = state.accepted_per_round.at[:, state.step].set(jnp.where(active, num_accepted, -1))
    return state.replace(
        step=state.step + 1,
        tokens=tokens,
        num_generated=num_generated,
        done=state.done | (active & (stop | (num_generated >= max_new_tokens))),
        pending=pending,
        num_pending=num_pending,
        target_cache=rollback(state.target_cache, target_lengths),
        draft_cache=draft_cache,
        target_calls=state.target_calls + active,
        draft_calls=state.draft_calls + k * active,
        accepted_per_round=accepted,
    )


def final_result(state: DecodeState, max_new_tokens: int, pad_id: int, gamma: int) -> DecodeResult:
    tokens = state.tokens[:, :max_new_tokens]
    valid = jnp.arange(max_new_tokens)[None, :] < state.num_generated[:, None]
    return DecodeResult(
        tokens=jnp.where(valid, tokens, pad_id),
        lengths=state.num_generated,
        target_calls=state.target_calls,
        draft_calls=state.draft_calls,
        accepted_per_round=state.accepted_per_round,
        gamma=gamma,
    )


def speculative_round(
    target, target_params, draft, draft_params, state: DecodeState,
    *, gamma: int, max_new_tokens: int, sampling: SamplingConfig, eos_id: int | None,
) -> DecodeState:  # fmt: skip
    """One round (the while loop's body): draft, verify, accept/reject, commit, roll back."""
    draft_keys, accept_keys = round_keys(state.keys, state.step, 2)
    draft_tokens, draft_probs, draft_cache = draft_step(
        draft, draft_params, state.draft_cache, state.pending, state.num_pending, draft_keys,
        gamma=gamma, sampling=sampling,
    )  # fmt: skip
    target_probs, target_cache = parallel_verify(
        target, target_params, state.target_cache, state.pending[:, 1], draft_tokens,
        sampling=sampling,
    )  # fmt: skip
    num_accepted, next_token = accept_reject(target_probs, draft_probs, draft_tokens, accept_keys)
    state = state.replace(target_cache=target_cache, draft_cache=draft_cache)
    return commit(
        state, num_accepted, next_token, draft_tokens,
        max_new_tokens=max_new_tokens, eos_id=eos_id,
    )  # fmt: skip


def autoregressive_step(
    model, params, state: DecodeState, *, max_new_tokens: int, sampling: SamplingConfig,
    eos_id: int | None,
) -> DecodeState:  # fmt: skip
    """One target call, one sampled token, committed like a round with no drafts."""
    (sample_keys,) = round_keys(state.keys, state.step, 1)
    logits, cache = model.extend(params, state.pending[:, 1:], state.target_cache)
    token = jax.vmap(sample_from)(sample_keys, adjusted_probs(logits[:, 0], sampling))  # [B]
    no_drafts = jnp.zeros((token.shape[0], 0), jnp.int32)
    state = state.replace(target_cache=cache)
    zero = jnp.zeros_like(token)
    return commit(state, zero, token, no_drafts, max_new_tokens=max_new_tokens, eos_id=eos_id)


def _not_done(state: DecodeState):
    return jnp.any(~state.done)


@functools.partial(
    jax.jit,
    static_argnames=(
        "target", "draft", "gamma", "max_new_tokens", "sampling", "eos_id", "pad_id", "mesh",
        "rules",
    ),
)  # fmt: skip
def _speculative_jit(
    target, target_params, draft, draft_params, prompt_tokens, prompt_lengths, keys,
    *, gamma, max_new_tokens, sampling, eos_id, pad_id, mesh=None, rules=None,
):  # fmt: skip
    cache_length = prompt_tokens.shape[1] + max_new_tokens + gamma + 2
    state = initial_state(
        prefill(target, target_params, prompt_tokens, prompt_lengths, cache_length, mesh, rules),
        prefill(draft, draft_params, prompt_tokens, prompt_lengths, cache_length, mesh, rules),
        prompt_tokens, prompt_lengths, keys, gamma, max_new_tokens,
    )  # fmt: skip
    state = _on_mesh(state, target, draft, mesh, rules)

    def round_(state: DecodeState) -> DecodeState:
        state = speculative_round(
            target, target_params, draft, draft_params, state, gamma=gamma,
            max_new_tokens=max_new_tokens, sampling=sampling, eos_id=eos_id,
        )  # fmt: skip
        return _on_mesh(state, target, draft, mesh, rules)

    state = jax.lax.while_loop(_not_done, round_, state)
    return final_result(state, max_new_tokens, pad_id, gamma)


@functools.partial(
    jax.jit,
    static_argnames=("model", "max_new_tokens", "sampling", "eos_id", "pad_id", "mesh", "rules"),
)
def _autoregressive_jit(
    model, params, prompt_tokens, prompt_lengths, keys,
    *, max_new_tokens, sampling, eos_id, pad_id, mesh=None, rules=None,
):  # fmt: skip
    cache_length = prompt_tokens.shape[1] + max_new_tokens + 1
    cache = prefill(model, params, prompt_tokens, prompt_lengths, cache_length, mesh, rules)
    state = initial_state(cache, None, prompt_tokens, prompt_lengths, keys, 0, max_new_tokens)
    state = _on_mesh(state, model, None, mesh, rules)

    def step(state: DecodeState) -> DecodeState:
        state = autoregressive_step(
            model, params, state, max_new_tokens=max_new_tokens, sampling=sampling, eos_id=eos_id
        )
        return _on_mesh(state, model, None, mesh, rules)

    state = jax.lax.while_loop(_not_done, step, state)
    return final_result(state, max_new_tokens, pad_id, 0)
