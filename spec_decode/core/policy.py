"""Choosing each round's gamma at run time from what the run has seen so far.

The paper's speedup analysis (Theorem 3.8) with the verification cost measured instead of
assumed: a round with g drafts emits E(g) = (1 - alpha^(g+1)) / (1 - alpha) tokens on average and
costs g * c + v(g) target steps, v(g) being a (g+1)-token target call relative to a 1-token one
(v(0) = 1: g = 0 is a plain autoregressive step), or, when measured, R(g): a whole round of the
decoder's loop with g drafts relative to a plain step, bookkeeping and loop overhead included
(``RoundCosts.rounds``; at batch 64 on an H200 the parts put g = 1 at 1.32 plain steps, the whole
round measured 1.19). The policy takes the g of the largest E(g) / cost(g), with acceptance
estimated by draft position from every draft examined so far in the batch (``acceptance_rates``; a
prior keeps the first rounds sensible). It is exact whatever it picks: the choice depends only on
rounds already committed, never on the current round's randomness.

Worked example, c = 0.1, v = (1, 1.05, 1.1, 1.2), alpha_hat = 0.6:

    g | E(g) | cost | E/cost
    0 | 1.00 | 1.00 | 1.00
    1 | 1.60 | 1.15 | 1.39
    2 | 1.96 | 1.30 | 1.51   <- chosen (more than margin = 5% above g = 0)
    3 | 2.18 | 1.50 | 1.45

When g = 0 wins (a useless or slow draft, or a batch large enough that verification is no
longer free), the draft is left alone; a g = 1 round re-measures alpha after a run of plain
steps as long as all plain steps before it, at least ``first_probe`` and at most ``probe_every``
(8, 8, 16, 32, 64, 64, ...), so a good draft switched off by an unlucky start is soon taken
back and a useless one costs few probes.

A choice holds for a stretch of rounds (``hold``), run as one inner loop, so the choosing itself
(a ``lax.switch``, and a host round trip on GPUs) is paid once per stretch, not per round: plain
steps until the next probe (they teach the estimate nothing, so the choice could not change),
and drafting rounds for as many rounds as the drafting run has lasted so far, at most
``max_hold`` (1, 1, 2, 4, 8, 16, 16, ...: a draft that stops agreeing is noticed within a
stretch).
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class RoundCosts:
    """Measured costs in units of one 1-token target step (hashable: a static jit field).

    Attributes:
      draft: c, one 1-token draft call.
      verify: v(0..G): v(g) is a (g+1)-token target call; v(0) = 1 by definition.
      rounds: R(0..G), measured whole rounds with g drafts (R(0) = 1, a plain step), or None to
        use the parts, g * c + v(g).
    """

    draft: float
    verify: tuple[float, ...]
    rounds: tuple[float, ...] | None = None

    def __post_init__(self):
        if not _is_number(self.draft) or not 0 <= self.draft < math.inf:
            raise ValueError(f"draft={self.draft!r} is not allowed: it must be a finite cost >= 0")
        verify = tuple(self.verify)
        if len(verify) < 2 or not all(_is_number(v) and 0 < v < math.inf for v in verify):
            raise ValueError(
                f"verify={self.verify!r} is not allowed: it must hold v(0), v(1), ... (at least "
                "two finite costs > 0, one per number of drafts)"
            )
        object.__setattr__(self, "draft", float(self.draft))
        object.__setattr__(self, "verify", _relative(verify))
        if self.rounds is not None:
            rounds = tuple(self.rounds)
            if len(rounds) != len(verify) or not all(
                _is_number(r) and 0 < r < math.inf for r in rounds
            ):
                raise ValueError(
                    f"rounds={self.rounds!r} is not allowed: it must be None or hold R(0), R(1), "
                    f"... R({len(verify) - 1}), one finite cost > 0 per entry of verify"
                )
            object.__setattr__(self, "rounds", _relative(rounds))

    @property
    def max_gamma(self) -> int:
        return len(self.verify) - 1

    @property
    def per_round(self) -> tuple[float, ...]:
        """cost(0..G) of a round relative to a plain step: R(g) if measured, else g c + v(g)."""
        if self.rounds is not None:
            return self.rounds
        return tuple(g * self.draft + v for g, v in enumerate(self.verify))


@dataclasses.dataclass(frozen=True)
class GammaPolicy:
    """Pick g in 0..max_gamma each round; a static field of ``SpeculativeDecoder``.

    Attributes:
      costs: measured ``RoundCosts`` (``spec_decode.bench.measure_round_costs``); their length
        sets max_gamma.
      prior_alpha, prior_weight: the Beta prior's mean and how many examined drafts it counts as
        (enough that a few unlucky first rounds do not switch a good draft off).
      margin: draft only when the best g is predicted faster than a plain step by this fraction
        (the parts' cost model, without ``RoundCosts.rounds``, leaves out a round's own
        bookkeeping: on an H200 at batch 64 it overestimated gamma 2 by about 14%).
      first_probe, probe_every: the shortest and the longest run of plain steps before a g = 1
        probe round (the run doubles in between).
      max_hold: the longest stretch of drafting rounds one choice holds for.
    """

    costs: RoundCosts
    prior_alpha: float = 0.5
    prior_weight: float = 6.0
    margin: float = 0.05
    probe_every: int = 64
    first_probe: int = 8
    max_hold: int = 16

    def __post_init__(self):
        if not isinstance(self.costs, RoundCosts):
            raise ValueError(f"costs={self.costs!r} is not allowed: pass a RoundCosts")
        if not _is_number(self.prior_alpha) or not 0 <= self.prior_alpha < 1:
            raise ValueError(f"prior_alpha={self.prior_alpha!r} is not allowed: it is in [0, 1)")
        if not _is_number(self.prior_weight) or not 0 < self.prior_weight < math.inf:
            raise ValueError(f"prior_weight={self.prior_weight!r} is not allowed: it is > 0")
        if not _is_number(self.margin) or not 0 <= self.margin < math.inf:
            raise ValueError(f"margin={self.margin!r} is not allowed: it is a number >= 0")
        for name in ("probe_every", "first_probe", "max_hold"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r} is not allowed: it is an integer >= 1")
        if self.first_probe > self.probe_every:
            raise ValueError(
                f"first_probe={self.first_probe} is not allowed: it must be <= probe_every="
                f"{self.probe_every}"
            )

    @property
    def max_gamma(self) -> int:
        return self.costs.max_gamma

    def speed(self, alpha: jax.Array) -> jax.Array:
        """Expected tokens per unit of cost of every g in 0..max_gamma: [G + 1].

        ``alpha`` is one acceptance rate (i.i.d. drafts, the paper's model) or [G] rates by
        position, a_j = P(draft j accepted | drafts 1..j-1 accepted): E(g) = 1 + sum over
        i <= g of a_1 ... a_i.
        """
        rates = jnp.broadcast_to(jnp.clip(alpha, 0.0, 1.0), (self.max_gamma,))
        reach = jnp.cumsum(jnp.cumprod(rates.astype(jnp.float32)))
        tokens = jnp.concatenate([jnp.ones((1,), jnp.float32), 1 + reach])
        return tokens / jnp.asarray(self.costs.per_round, jnp.float32)

    def acceptance_rates(self, accepted_per_round: jax.Array, gamma_per_round: jax.Array):
        """[G] a_j from every round so far: drafts accepted at position j / drafts examined there.

        Acceptance is not independent of position in real text (a draft that got one token
        right often gets the next: on SmolLM2 alpha was 0.43 at gamma 2 and 0.57 at gamma 4), so
        one pooled alpha undervalues long rounds. Each a_j is smoothed toward a_{j-1} (a_0 =
        prior_alpha) with prior_weight examined drafts: a position no round reached yet takes
        its predecessor's rate, and the policy climbs to it when that pays.
        """
        position = jnp.arange(1, self.max_gamma + 1)  # j
        accepted = accepted_per_round[:, :, None]  # [B, R, 1]: n per row and round, -1 = none
        reached = (accepted >= 0) & (position <= gamma_per_round[None, :, None])
        examined = jnp.sum(reached & (accepted >= position - 1), axis=(0, 1))  # [G]
        kept = jnp.sum(reached & (accepted >= position), axis=(0, 1))  # [G]
        # A Python loop over the G positions, not a scan: on a GPU each trip of a loop is a
        # host round trip, paid at every choice.
        rates, previous = [], jnp.float32(self.prior_alpha)
        for j in range(self.max_gamma):
            previous = (kept[j] + self.prior_weight * previous) / (examined[j] + self.prior_weight)
            rates.append(previous)
        return jnp.stack(rates).astype(jnp.float32)

    def choose(self, accepted_per_round: jax.Array, gamma_per_round: jax.Array, rounds):
        """g for the next round, from the rounds so far ([B, R] accepted, [R] gamma; -1 = none)."""
        speed = self.speed(self.acceptance_rates(accepted_per_round, gamma_per_round))
        best = jnp.argmax(speed)  # ties: the smaller g
        best = jnp.where(speed[best] > (1 + self.margin) * speed[0], best, 0)
        since, interval = self._plain_run(gamma_per_round, rounds)
        probe = (best == 0) & (since >= interval)
        return jnp.where(probe, 1, best).astype(jnp.int32)

    def _plain_run(self, gamma_per_round: jax.Array, rounds):
        """(plain steps since the last drafting round, the run after which the next probe is)."""
        index = jnp.arange(gamma_per_round.shape[0])
        past = index < rounds
        last_draft = jnp.max(jnp.where(past & (gamma_per_round > 0), index, -1))
        since = rounds - 1 - last_draft
        plain_before = jnp.sum(past & (gamma_per_round == 0)) - since
        return since, jnp.clip(plain_before, self.first_probe, self.probe_every)

    def hold(self, gamma: jax.Array, gamma_per_round: jax.Array, rounds) -> jax.Array:
        """Rounds the chosen ``gamma`` runs for before the next choice (>= 1; see the module)."""
        index = jnp.arange(gamma_per_round.shape[0])
        last_plain = jnp.max(jnp.where((index < rounds) & (gamma_per_round == 0), index, -1))
        since, interval = self._plain_run(gamma_per_round, rounds)
        until_probe = interval - since
        drafting_run = rounds - 1 - last_plain  # drafting rounds since the last plain one
        hold = jnp.where(gamma == 0, until_probe, jnp.minimum(drafting_run, self.max_hold))
        return jnp.maximum(hold, 1).astype(jnp.int32)


def _relative(costs: tuple) -> tuple[float, ...]:
    return tuple(float(c) / float(costs[0]) for c in costs)


def _is_number(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)
