"""The decoder object: a frozen ``SpeculativeDecoder`` (``init``, ``round``, ``run``, ``stream``).

Dataflow of one speculative round (every row at once, each at its own length):

    prefill   both caches hold prompt[:len-1]; the last prompt token is pending    (init)
    draft     gamma draft calls: x_1..x_gamma ~ q_1..q_gamma          (steps.draft_block)
    verify    one target call over [pending, x_1..x_gamma]: p_1..p_{gamma+1}
    accept    n accepted drafts and one more token t                 (accept_reject)
    commit    emit x_1..x_n, t; cut at EOS or max_new_tokens; done rows freeze
    rollback  target lengths += n + 1; draft lengths follow (pure: set lengths, no recompute)

Cache invariant between rounds: the target cache holds every committed token except the newest
one (``pending[:, 1]``); the draft cache holds the same minus ``num_pending - 1`` tokens.

With ``draft=None`` the same object is the autoregressive baseline: a round is one target call
that emits one token, with the same prefill, stopping, keys and loop.

    decoder = SpeculativeDecoder(target, draft, gamma=4, max_new_tokens=64)
    params = DecoderParams(target_params, draft_params)
    result = decoder.run(params, prompts, lengths, key)       # one jitted lax.while_loop
    for new_tokens in (stream := decoder.stream(params, prompts, lengths, key)):
        ...                                                   # the same tokens, round by round
    stream.result()

On a device mesh (``mesh=``, see ``spec_decode.sharding``) the params come in already sharded;
the loop pins the layout of what it creates: rows of the loop state on 'data' and each cache by
its model's ``cache_logical_axes()``, so every step runs where the weights live and none of them
is gathered.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from spec_decode import sharding
from spec_decode.core import contract, validation
from spec_decode.core.commit import commit_round
from spec_decode.core.contract import LanguageModel, Params, rollback
from spec_decode.core.features import empty_features, feature_prefill, read_before, write_features
from spec_decode.core.keys import round_keys, row_keys
from spec_decode.core.policy import GammaPolicy
from spec_decode.core.prefill import chunked_prefill
from spec_decode.core.rejection import accept_greedy, accept_reject
from spec_decode.core.sampling import SamplingConfig, adjusted_probs, sample_from
from spec_decode.core.state import DecodeResult, DecodeState
from spec_decode.core.steps import conditioned_draft_block, draft_block


class DecoderParams(NamedTuple):
    """The traced half of a decode: the target's params and the draft's (None without one)."""

    target: Params
    draft: Params = None


@dataclasses.dataclass(frozen=True)
class SpeculativeDecoder:
    """Everything static about a decode; hashable, so a change of any field recompiles.

    Attributes:
      target: the model whose distribution the output follows.
      draft: the proposing model, or None for the autoregressive baseline.
      gamma: K, drafts per round (default 4 with a draft; must be 0 or None without one), or
        "auto": each round's gamma in 0..policy.max_gamma is chosen by ``policy`` from the
        rounds before it (0 is a plain target step that leaves the draft alone).
      max_new_tokens: tokens generated per row at most.
      sampling: the adjustment applied to both models' logits (greedy, temperature, ...).
      eos_id: a row stops after emitting it (None: only max_new_tokens stops a row).
      pad_id: written after each row's end in ``DecodeResult.tokens``.
      mesh, rules: lay caches and per-row state out on a device mesh (``spec_decode.sharding``).
      policy: a ``GammaPolicy`` (measured costs) with gamma="auto"; None otherwise.
    """

    target: LanguageModel
    draft: LanguageModel | None = None
    gamma: int | None = None
    max_new_tokens: int = 32
    sampling: SamplingConfig = SamplingConfig()
    eos_id: int | None = None
    pad_id: int = 0
    mesh: jax.sharding.Mesh | None = None
    rules: sharding.Rules | None = None
    policy: GammaPolicy | None = None

    def __post_init__(self):
        if self.gamma == "auto":
            validation.check_policy(self.policy, with_draft=self.draft is not None)
        else:
            gamma = validation.check_gamma(self.gamma, with_draft=self.draft is not None)
            object.__setattr__(self, "gamma", gamma)
            if self.policy is not None:
                raise ValueError(
                    f"policy={self.policy!r} is not allowed with gamma={self.gamma!r}: a policy "
                    "chooses gamma, so it goes with gamma='auto'"
                )
        if self.draft is not None:
            validation.check_vocab(self.target, self.draft)
            validation.check_features(self.target, self.draft)
        validation.check_int("max_new_tokens", self.max_new_tokens, 1)
        validation.check_sampling(self.sampling)
        validation.check_eos(self.eos_id, self.target.vocab_size)
        validation.check_int("pad_id", self.pad_id, 0)
        if self.mesh is not None and not isinstance(self.mesh, jax.sharding.Mesh):
            raise ValueError(
                f"mesh={self.mesh!r} is not allowed: it must be None or a jax.sharding.Mesh "
                "(spec_decode.sharding.make_mesh builds one)"
            )
        rules = sharding.check_rules(self.rules)
        object.__setattr__(self, "rules", None if self.mesh is None else rules)

    @property
    def models(self) -> tuple[LanguageModel, ...]:
        return (self.target,) if self.draft is None else (self.target, self.draft)

    @property
    def reads_features(self) -> bool:
        """Whether the draft reads the target's features (``core/features.py``)."""
        return self.draft is not None and contract.reads_features(self.draft)

    @property
    def max_drafts(self) -> int:
        """The most drafts one round makes: gamma, or the policy's max_gamma with "auto"."""
        return self.policy.max_gamma if self.gamma == "auto" else self.gamma

    @property
    def catch_up_chunk(self) -> int:
        """Tokens per draft call when the draft is fed what it missed in plain steps."""
        return max(self.max_drafts + 1, 16)

    def cache_length(self, prompt_width: int) -> int:
        """L of both caches: the longest row plus a whole round written past its end (and with
        gamma "auto" a catch-up chunk written from at most the target's length)."""
        ahead = self.max_drafts + 2
        if self.gamma == "auto":
            ahead = max(ahead, self.catch_up_chunk)
        return prompt_width + self.max_new_tokens + ahead

    # -- the four entry points ---------------------------------------------------------------

    def init(self, params: DecoderParams, prompt_tokens, prompt_lengths=None, key=None):
        """Prefill both caches; the state before the first round (``round`` advances it)."""
        return _init(self, _as_params(params), *self.inputs(prompt_tokens, prompt_lengths, key))

    def round(self, params: DecoderParams, state: DecodeState) -> DecodeState:
        """One round, pure and traceable: the while loop's body, and ``stream``'s step.

        With gamma "auto" it is one stretch: the policy's gamma for the policy's number of
        rounds (``GammaPolicy.hold``), in an inner loop that stops early when every row is done.
        """
        if self.draft is None:
            state = self._autoregressive_round(params, state)
        elif self.gamma == "auto":
            gamma = self.policy.choose(
                state.accepted_per_round, state.gamma_per_round, state.rounds
            )
            hold = self.policy.hold(gamma, state.gamma_per_round, state.rounds)
            branches = [
                functools.partial(self._stretch_of, gamma=g) for g in range(self.max_drafts + 1)
            ]
            state = jax.lax.switch(gamma, branches, params, state, hold)
        else:
            state = self._speculative_round(params, state, self.gamma)
        return self._on_mesh(state)

    def run(self, params: DecoderParams, prompt_tokens, prompt_lengths=None, key=None):
        """Decode every row to its end in one jitted ``lax.while_loop``; a ``DecodeResult``."""
        return _run(self, _as_params(params), *self.inputs(prompt_tokens, prompt_lengths, key))

    def lower(self, params: DecoderParams, prompt_tokens, prompt_lengths=None, key=None):
        """``run`` lowered ahead of time (``.compile()``, ``.as_text()``); the compiled loop takes
        ``(params, *decoder.inputs(prompt_tokens, prompt_lengths, key))``."""
        inputs = self.inputs(prompt_tokens, prompt_lengths, key)
        return _run.lower(self, _as_params(params), *inputs)

    def stream(self, params: DecoderParams, prompt_tokens, prompt_lengths=None, key=None):
        """A ``DecodeStream``: iterate to run rounds; the tokens are ``run``'s for the same key."""
        params = _as_params(params)
        from spec_decode.core.stream import DecodeStream  # it imports this module

        return DecodeStream(self, params, self.init(params, prompt_tokens, prompt_lengths, key))

    def result(self, state: DecodeState) -> DecodeResult:
        """Tokens (pad_id past each row's end) and the per-row record of the rounds."""
        tokens = state.tokens[:, : self.max_new_tokens]
        valid = jnp.arange(self.max_new_tokens)[None, :] < state.num_generated[:, None]
        return DecodeResult(
            tokens=jnp.where(valid, tokens, self.pad_id),
            lengths=state.num_generated,
            target_calls=state.target_calls,
            draft_calls=state.draft_calls,
            accepted_per_round=state.accepted_per_round,
            gamma_per_round=state.gamma_per_round,
            gamma=self.max_drafts,
        )

    # -- pieces ------------------------------------------------------------------------------

    def inputs(self, prompt_tokens, prompt_lengths=None, key=None):
        """Checked before tracing: prompts [B, P] int32, lengths [B] int32, row keys [B]."""
        batch, width, _ = validation.check_prompts(
            prompt_tokens,
            prompt_lengths,
            self.max_new_tokens,
            validation.model_max_length(*self.models),
            vocab_size=self.target.vocab_size,
        )
        keys = row_keys(jax.random.key(0) if key is None else key, batch)
        if prompt_lengths is None:
            prompt_lengths = np.full((batch,), width, np.int32)
        prompts = jnp.asarray(prompt_tokens, jnp.int32)
        return prompts, jnp.asarray(prompt_lengths, jnp.int32), keys

    def _prefill(self, model, params, prompt_tokens, prompt_lengths):
        """A cache holding each row's prompt except its last token (which becomes pending)."""
        batch, width = prompt_tokens.shape
        cache = model.init_cache(params, batch, self.cache_length(width))
        if self.mesh is not None:
            cache = sharding.constrain_cache(model, cache, self.mesh, self.rules)
        if width > 1:
            # Rows shorter than P also write their padding; the rollback below discards it.
            cache = chunked_prefill(model, params, prompt_tokens[:, : width - 1], cache)
        return rollback(cache, prompt_lengths - 1)

    def _initial_state(self, params, prompt_tokens, prompt_lengths, keys) -> DecodeState:
        batch = prompt_tokens.shape[0]
        last = jnp.take_along_axis(prompt_tokens, (prompt_lengths - 1)[:, None], axis=1)  # [B, 1]
        zeros = jnp.zeros((batch,), jnp.int32)
        draft_cache = features = target_cache = None
        if self.reads_features:
            target_cache, draft_cache, features = self._feature_prefill(
                params, prompt_tokens, prompt_lengths
            )
        elif self.draft is not None:
            draft_cache = self._prefill(self.draft, params.draft, prompt_tokens, prompt_lengths)
        state = DecodeState(
            rounds=jnp.zeros((), jnp.int32),
            keys=keys,
            tokens=jnp.zeros((batch, self.max_new_tokens + self.max_drafts + 1), jnp.int32),
            num_generated=zeros,
            done=jnp.zeros((batch,), bool),
            pending=jnp.concatenate([last, last], axis=1),
            num_pending=jnp.ones((batch,), jnp.int32),
            target_cache=self._prefill(self.target, params.target, prompt_tokens, prompt_lengths)
            if target_cache is None
            else target_cache,
            draft_cache=draft_cache,
            target_calls=zeros,
            draft_calls=zeros,
            accepted_per_round=jnp.full((batch, self.max_new_tokens), -1, jnp.int32),
            gamma_per_round=jnp.full((self.max_new_tokens,), -1, jnp.int32),
            last_prompt=last[:, 0],
            features=features,
        )
        return self._on_mesh(state)

    def _feature_prefill(self, params, prompt_tokens, prompt_lengths):
        """``_prefill`` of both models in one chunk loop: the draft reads the target's features
        of each chunk (``features.feature_prefill``); both caches and the feature buffer."""
        batch, width = prompt_tokens.shape
        length = self.cache_length(width)
        caches = [m.init_cache(p, batch, length) for m, p in zip(self.models, params, strict=True)]
        if self.mesh is not None:
            caches = [
                sharding.constrain_cache(m, c, self.mesh, self.rules)
                for m, c in zip(self.models, caches, strict=True)
            ]
        features = empty_features(self.target, params.target, batch, length)
        if width > 1:
            *caches, features = feature_prefill(
                self.target, params.target, self.draft, params.draft,
                prompt_tokens[:, : width - 1], *caches, features,
            )  # fmt: skip
        target_cache, draft_cache = (rollback(c, prompt_lengths - 1) for c in caches)
        return target_cache, draft_cache, features

    def _speculative_round(
        self, params: DecoderParams, state: DecodeState, gamma: int
    ) -> DecodeState:
        """Draft gamma tokens, verify them in one target call, accept/reject, commit."""
        draft_keys, accept_keys = round_keys(state.keys, state.rounds, 2)
        greedy = self.sampling.greedy  # argmax all through: no [B, K+1, V] distributions
        if self.reads_features:
            positions = state.draft_cache.lengths[:, None] + jnp.arange(gamma + 1)  # [B, K+1]
            draft_tokens, draft_probs, draft_cache = conditioned_draft_block(
                self.draft, params.draft, state.draft_cache, _token_reader(state)(positions),
                read_before(state.features, positions), state.num_pending, draft_keys,
                gamma=gamma, sampling=self.sampling, return_probs=not greedy,
            )  # fmt: skip
        else:
            draft_tokens, draft_probs, draft_cache = draft_block(
                self.draft, params.draft, state.draft_cache, state.pending, state.num_pending,
                draft_keys, gamma=gamma, sampling=self.sampling, return_probs=not greedy,
            )  # fmt: skip
        # Verify: one target call over [pending, x_1..x_K] (steps.parallel_verify's).
        tokens = jnp.concatenate([state.pending[:, 1:], draft_tokens], axis=1)  # [B, K+1]
        logits, state = self._target_call(params, tokens, state)  # [B, K+1, V]
        if greedy:
            num_accepted, next_token = accept_greedy(logits, draft_tokens)
        else:
            target_probs = adjusted_probs(logits, self.sampling)  # p_1 .. p_{K+1}
            num_accepted, next_token = accept_reject(
                target_probs, draft_probs, draft_tokens, accept_keys
            )
        state = state.replace(draft_cache=draft_cache)
        return commit_round(
            state, num_accepted, next_token, draft_tokens,
            max_new_tokens=self.max_new_tokens, eos_id=self.eos_id, rereads=self.reads_features,
        )  # fmt: skip

    def _target_call(self, params: DecoderParams, tokens: jax.Array, state: DecodeState):
        """``extend`` of the target cache by tokens [B, K]; the logits and the state. With a
        draft that reads features the target's hidden states are written to the buffer too."""
        if state.features is None:
            logits, cache = self.target.extend(params.target, tokens, state.target_cache)
            return logits, state.replace(target_cache=cache)
        lengths = state.target_cache.lengths
        logits, hidden, cache = self.target.extend_features(
            params.target, tokens, state.target_cache
        )
        features = write_features(state.features, hidden, lengths)
        return logits, state.replace(target_cache=cache, features=features)

    def _autoregressive_round(self, params: DecoderParams, state: DecodeState) -> DecodeState:
        """One target call, one sampled token, committed like a round with no drafts."""
        (sample_keys,) = round_keys(state.keys, state.rounds, 1)
        logits, state = self._target_call(params, state.pending[:, 1:], state)
        if self.sampling.greedy:
            token = jnp.argmax(logits[:, 0], axis=-1).astype(jnp.int32)  # what one-hot p draws
        else:
            probs = adjusted_probs(logits[:, 0], self.sampling)  # [B, V]
            token = jax.vmap(sample_from)(sample_keys, probs)  # [B]
        no_drafts = jnp.zeros((token.shape[0], 0), jnp.int32)
        return commit_round(
            state, jnp.zeros_like(token), token, no_drafts,
            max_new_tokens=self.max_new_tokens, eos_id=self.eos_id,
        )  # fmt: skip

    def _stretch_of(
        self, params: DecoderParams, state: DecodeState, hold: jax.Array, *, gamma: int
    ) -> DecodeState:
        """One branch of a run-time-gamma round: ``hold`` rounds of gamma drafts each, or of
        plain steps for gamma 0 (the draft is left behind; a drafting stretch catches it up)."""
        if gamma == 0:

            def step(state):
                draft_cache = state.draft_cache
                state = self._autoregressive_round(params, state.replace(draft_cache=None))
                return state.replace(draft_cache=draft_cache)

        else:
            state = self._catch_up(params, state)
            step = functools.partial(self._speculative_round, params, gamma=gamma)
        end = state.rounds + hold
        return jax.lax.while_loop(
            lambda state: (state.rounds < end) & jnp.any(~state.done), step, state
        )

    def _catch_up(self, params: DecoderParams, state: DecodeState) -> DecodeState:
        """Feed the draft the committed tokens it missed in plain steps, a chunk per call.

        Afterwards each active row's draft is at most one token behind the target, and
        ``pending``/``num_pending`` describe that gap as ``draft_block`` expects it. Position p
        of row b holds the last prompt token when p = P_b - 1 and generated token p - P_b
        after it, P_b = target length - generated + 1 (the newest token is in neither cache).
        """
        target_lengths = state.target_cache.lengths  # [B]
        active = ~state.done
        token_at = _token_reader(state)
        chunk = self.catch_up_chunk
        behind = lambda cache: active & (target_lengths - cache.lengths > 1)  # [B]

        def feed(carry):
            cache, calls = carry
            todo, before = behind(cache), cache.lengths
            positions = before[:, None] + jnp.arange(chunk)  # [B, C]
            if self.reads_features:  # the target's features, from the plain steps' buffer
                features = read_before(state.features, positions)
                _, _, cache = self.draft.extend_conditioned(
                    params.draft, token_at(positions), features, cache
                )
            else:
                _, cache = self.draft.extend(params.draft, token_at(positions), cache)
            after = jnp.where(todo, jnp.minimum(before + chunk, target_lengths - 1), before)
            return rollback(cache, after), calls + todo

        draft_cache, calls = jax.lax.while_loop(
            lambda carry: jnp.any(behind(carry[0])),
            feed,
            (state.draft_cache, jnp.zeros_like(state.draft_calls)),
        )
        lag = target_lengths - draft_cache.lengths  # active rows: 0 or 1
        previous = token_at((target_lengths - 1)[:, None])[:, 0]  # at position t - 1
        return state.replace(
            draft_cache=draft_cache,
            draft_calls=state.draft_calls + calls,
            num_pending=jnp.where(active, lag + 1, state.num_pending),
            pending=state.pending.at[:, 0].set(jnp.where(active, previous, state.pending[:, 0])),
        )

    def _on_mesh(self, state: DecodeState) -> DecodeState:
        """Pin the loop state's layout: per-row arrays split over rows, caches by logical axes.

        The while loop carries one layout for its whole life; pinning the state it starts from
        and each round's result keeps XLA from picking one that gathers the caches.
        """
        if self.mesh is None:
            return state
        not_rows = ("rounds", "gamma_per_round", "target_cache", "draft_cache")
        rows = {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}
        rows = {name: value for name, value in rows.items() if name not in not_rows}
        mesh, rules = self.mesh, self.rules
        draft_cache = state.draft_cache
        if draft_cache is not None:
            draft_cache = sharding.constrain_cache(self.draft, draft_cache, mesh, rules)
        return state.replace(
            **sharding.constrain_rows(rows, mesh, rules),
            target_cache=sharding.constrain_cache(self.target, state.target_cache, mesh, rules),
            draft_cache=draft_cache,
        )


def _token_reader(state: DecodeState):
    """positions [B, C] -> the committed tokens there [B, C]: the last prompt token at P_b - 1,
    generated tokens after it (P_b = target length - generated + 1: the newest token is in
    neither cache). Other positions read garbage, for the caller to discard."""
    first_generated = state.target_cache.lengths - state.num_generated + 1  # [B]: P_b

    def token_at(positions):  # [B, C] -> [B, C]
        index = positions - first_generated[:, None]
        generated = jnp.take_along_axis(
            state.tokens, jnp.clip(index, 0, state.tokens.shape[1] - 1), axis=1
        )
        return jnp.where(index < 0, state.last_prompt[:, None], generated)

    return token_at


def _as_params(params) -> DecoderParams:
    if isinstance(params, DecoderParams):
        return params
    if isinstance(params, tuple) and len(params) == 2:
        return DecoderParams(*params)
    raise ValueError(
        f"params of type {type(params).__name__} is not allowed: pass "
        "DecoderParams(target_params, draft_params) (draft_params None without a draft)"
    )


@functools.partial(jax.jit, static_argnums=0)
def _init(decoder: SpeculativeDecoder, params, prompt_tokens, prompt_lengths, keys):
    return decoder._initial_state(params, prompt_tokens, prompt_lengths, keys)


@functools.partial(jax.jit, static_argnums=0, donate_argnums=2)
def _round(decoder: SpeculativeDecoder, params, state):
    return decoder.round(params, state)


@functools.partial(jax.jit, static_argnums=0)
def _run(decoder: SpeculativeDecoder, params, prompt_tokens, prompt_lengths, keys):
    state = decoder._initial_state(params, prompt_tokens, prompt_lengths, keys)
    state = jax.lax.while_loop(
        lambda state: jnp.any(~state.done), lambda state: decoder.round(params, state), state
    )
    return decoder.result(state)
