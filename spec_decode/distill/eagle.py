"""Training an EAGLE draft (``drafts/eagle.py``) by teacher forcing on the target's features.

One uncached target pass gives the true hidden states h [B, T, D] and next-token distributions
p = softmax(head(h)) of a batch of target text; the draft reads, with token t, h_{t-1} (zeros
at t = 0), exactly what it reads in the decoder for a position the target has verified, and
is fitted to p at every position:

    loss = KL(p_t || q_t) + regression * smooth_l1(predicted h_t, h_t)     (masked mean over t)

``rollout`` > 1 adds passes that read the previous pass's predicted features instead (the
features a round's later drafts read), and ``noise`` perturbs the true ones (EAGLE's uniform
augmentation); both default to plain teacher forcing.

Forward KL as in ``distill/train.py`` (what acceptance sum_x min(p, q) rewards); the regression
term is EAGLE's feature loss, which keeps the predictions usable as the next position's input
while drafting. Only fc, the blocks and the final norm train; the target's tables are frozen.
"""

from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from spec_decode.drafts.eagle import EagleDraft


def shifted(hidden: jax.Array) -> jax.Array:
    """The features read with each token: hidden [B, T, D] one position later, zeros first."""
    return jnp.pad(hidden, ((0, 0), (1, 0), (0, 0)))[:, :-1]


def eagle_loss(
    draft: EagleDraft, own, frozen, target, target_params, tokens, mask, regression,
    rollout: int = 1, noise: float = 0.0, key=None,
):  # fmt: skip
    """Masked mean over positions of KL(p || q) + regression * smooth L1 of the features,
    averaged over ``rollout`` passes: pass 1 reads the target's true features (plus uniform
    noise of amplitude ``noise``, EAGLE's augmentation; ``key`` draws it), pass k + 1 reads
    pass k's predicted features, as the k + 1-th draft of a round does."""
    hidden = jax.lax.stop_gradient(target.forward_hidden(target_params, tokens))  # [B, T, D]
    log_p = jax.nn.log_softmax(target.logits(target_params, hidden), axis=-1)  # [B, T, V]
    params, read, total = dict(own, **frozen), hidden, 0.0
    if noise:
        read = read + noise * jax.random.uniform(key, read.shape, jnp.float32, -1.0, 1.0).astype(
            read.dtype
        )
    for _ in range(rollout):
        logits, predicted = draft.forward_conditioned(params, tokens, shifted(read))
        log_q = jax.nn.log_softmax(logits, axis=-1)
        kl = jnp.sum(jnp.exp(log_p) * (log_p - log_q), axis=-1)  # [B, T]
        feature = optax.huber_loss(predicted.astype(jnp.float32), hidden.astype(jnp.float32))
        per_position = kl + regression * jnp.mean(feature, axis=-1)
        total = total + jnp.sum(per_position * mask) / jnp.maximum(jnp.sum(mask), 1.0)
        read = predicted.astype(hidden.dtype)
    return total / rollout


def train_eagle(
    target, target_params, draft: EagleDraft, params, sequences, lengths, *,
    steps: int, batch: int, learning_rate: float = 2e-3, regression: float = 0.1, seed: int = 0,
    seconds: float | None = None, progress: bool = False, rollout: int = 1, noise: float = 0.0,
) -> tuple[dict, list[float]]:  # fmt: skip
    """AdamW (warm-up, cosine decay, clipping) over random batches of target text.

    sequences [N, T] int32 (right-padded), lengths [N]: a position counts when its next token
    is real, as in ``distill.train``. ``seconds``: a wall-clock budget (the compiling first
    step excluded); training stops at ``steps`` or when it is spent, whichever comes first (the
    schedule is laid out for ``steps``, so a short budget ends at a higher rate). ``progress``:
    a tqdm bar. ``rollout`` and ``noise``: see ``eagle_loss`` (1 and 0: plain teacher forcing).
    Returns the trained params and the per-step losses.
    """
    from tqdm.auto import tqdm

    for name, value in (("steps", steps), ("batch", batch), ("rollout", rollout)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} is not allowed: it must be an integer >= 1")
    if not (isinstance(noise, int | float) and noise >= 0):
        raise ValueError(f"noise={noise!r} is not allowed: a number >= 0")
    if seconds is not None and not (isinstance(seconds, int | float) and seconds > 0):
        raise ValueError(f"seconds={seconds!r} is not allowed: None or a number > 0")
    if np.ndim(sequences) != 2 or np.shape(lengths) != (np.shape(sequences)[0],):
        raise ValueError(
            f"sequences with shape={np.shape(sequences)} and lengths with "
            f"shape={np.shape(lengths)} are not allowed: they must be [N, T] and [N]"
        )
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, learning_rate, min(100, steps // 10 + 1), steps, learning_rate * 0.05
    )
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, 0.0, 0.01))
    own = jax.tree.map(jnp.array, EagleDraft.own(params))  # copies: the step donates them
    frozen = {k: v for k, v in params.items() if k not in own}
    loss_fn = functools.partial(
        eagle_loss, draft, regression=regression, rollout=rollout, noise=float(noise)
    )

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(own, opt_state, frozen, target_params, tokens, mask, key):
        loss, grads = jax.value_and_grad(loss_fn)(
            own, frozen, target, target_params, tokens, mask, key=key
        )
        updates, opt_state = optimizer.update(grads, opt_state, own)
        return optax.apply_updates(own, updates), opt_state, loss

    opt_state = optimizer.init(own)
    width = np.shape(sequences)[1]
    valid = np.arange(width)[None, :] < (np.asarray(lengths)[:, None] - 1)
    rng, noise_key = np.random.default_rng(seed), jax.random.key(seed)
    losses, started = [], None
    bar = tqdm(total=steps, desc="training eagle", disable=not progress)
    for index in range(steps):
        rows = rng.integers(0, len(sequences), batch)
        own, opt_state, loss = step(
            own, opt_state, frozen, target_params, jnp.asarray(np.asarray(sequences)[rows]),
            jnp.asarray(valid[rows], jnp.float32), jax.random.fold_in(noise_key, index),
        )  # fmt: skip
        losses.append(loss)
        bar.update(1)
        if seconds is None:
            continue
        if index == 0:
            jax.block_until_ready(loss)
            started = time.perf_counter()  # after the compiling first step
        elif index % 10 == 0:  # waiting on every step would stall the device queue
            jax.block_until_ready(loss)
            if time.perf_counter() - started > seconds:
                break
    bar.close()
    losses = [float(x) for x in jax.device_get(losses)]
    if not np.isfinite(losses[-1]):
        raise FloatingPointError(f"training diverged (last loss {losses[-1]}): lower learning_rate")
    return dict(params, **own), losses
