"""Distillation: fit the draft's next-token distributions to the frozen target's.

Loss: forward KL(p || q) per position, with p renormalised over the draft's support (the
subset head cannot reach other tokens). Forward KL is DistillSpec's default for
target-generated data; it pushes q to cover where p has mass, which is what acceptance
sum_x min(p, q) rewards. Only the draft's own layers train; the shared table is frozen.
"""

from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from spec_decode.drafts.neural import SharedEmbeddingDraft


def _split(params):
    own = {k: v for k, v in params["body"].items() if k != "embed"}
    return own, params["body"]["embed"], params["subset"]


def _join(own, embed, subset):
    return {"body": dict(own, embed=embed), "subset": subset}


def make_train_step(target, draft: SharedEmbeddingDraft, optimizer):
    def loss_fn(own, embed, subset, target_params, tokens, mask):
        target_logits = target.forward(target_params, tokens)  # [B, T, V]
        p = jax.nn.softmax(target_logits[..., subset], axis=-1)  # over the subset [B, T, M]
        params = _join(own, embed, subset)
        hidden = draft.lm.forward_hidden(params["body"], tokens)
        log_q = jax.nn.log_softmax(draft.subset_logits(params, hidden), axis=-1)
        kl = jnp.sum(p * (jnp.log(jnp.maximum(p, 1e-30)) - log_q), axis=-1)  # [B, T]
        return jnp.sum(kl * mask) / jnp.maximum(jnp.sum(mask), 1.0)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(own, opt_state, embed, subset, target_params, tokens, mask):
        loss, grads = jax.value_and_grad(loss_fn)(own, embed, subset, target_params, tokens, mask)
        updates, opt_state = optimizer.update(grads, opt_state, own)
        return optax.apply_updates(own, updates), opt_state, loss

    return step


def train(
    target, target_params, draft: SharedEmbeddingDraft, params, sequences, lengths, *,
    steps: int, batch: int, learning_rate: float = 2e-3, seed: int = 0,
    seconds: float | None = None,
) -> tuple[dict, list[float]]:  # fmt: skip
    """AdamW with warm-up and cosine decay; returns trained params and per-step losses.

    ``seconds``: a wall-clock budget. After a few timed steps the run's length becomes
    min(steps, what fits in the budget), and the cosine schedule is laid over that length, so
    a budgeted run still ends at the low learning rate. The rate is an input of the compiled
    step (optax.inject_hyperparams), so changing the length never recompiles.
    """
    adamw = optax.inject_hyperparams(optax.adamw)(learning_rate=0.0, weight_decay=0.01)
    # A step whose gradients are not finite is skipped (and counted); 20 in a row are an error.
    optimizer = optax.apply_if_finite(
        optax.chain(optax.clip_by_global_norm(1.0), adamw), max_consecutive_errors=20
    )
    own, embed, subset = _split(params)
    own = jax.tree.map(jnp.array, own)  # copies: the step donates them, the caller keeps params
    opt_state = optimizer.init(own)
    step = make_train_step(target, draft, optimizer)
    rng = np.random.default_rng(seed)
    width = sequences.shape[1]
    # Position t's loss predicts token t + 1; only positions whose next token is real count.
    valid = np.arange(width)[None, :] < (lengths[:, None] - 1)
    losses, total, probe, started = [], steps, 10, None
    progress = tqdm(total=total, desc="distilling")
    index = 0
    while index < total:
        warmup = min(200, total // 10 + 1)  # total may shrink to fit the budget
        schedule = optax.warmup_cosine_decay_schedule(
            0.0, learning_rate, warmup, total, learning_rate * 0.05
        )
        hyperparams = opt_state.inner_state[1].hyperparams
        hyperparams["learning_rate"] = jnp.asarray(schedule(index), jnp.float32)
        rows = rng.integers(0, len(sequences), batch)
        own, opt_state, loss = step(
            own, opt_state, embed, subset, target_params, jnp.asarray(sequences[rows]),
            jnp.asarray(valid[rows], jnp.float32),
        )  # fmt: skip
        losses.append(loss)
        index += 1
        if index % 200 == 0 and int(opt_state.notfinite_count) > 0:
            _raise_if_diverged(losses, int(opt_state.notfinite_count))
        progress.update(1)
        if seconds is not None and index == 1:
            jax.block_until_ready(loss)
            started = time.perf_counter()  # after the compiling first step
        elif seconds is not None and index == 1 + probe:
            jax.block_until_ready(loss)
            per_step = (time.perf_counter() - started) / probe
            total = max(index + 1, min(steps, int(seconds / per_step)))
            progress.total = total
            progress.refresh()
    progress.close()
    skipped = int(opt_state.total_notfinite)
    if skipped:
        _raise_if_diverged(losses, int(opt_state.notfinite_count))
        print(f"distilling: {skipped} of {index} steps skipped for non-finite gradients")
    return _join(own, embed, subset), [float(x) for x in jax.device_get(losses)]


def _raise_if_diverged(losses, consecutive: int) -> None:
    """Raise once 20 steps in a row were skipped, naming the first non-finite loss."""
    if consecutive < 20:
        return
    bad = np.flatnonzero(~np.isfinite(np.asarray(jax.device_get(losses), np.float64)))
    where = f"the first non-finite loss was at step {bad[0] + 1}" if len(bad) else "losses finite"
    raise FloatingPointError(
        f"training diverged: {consecutive} steps in a row had non-finite gradients ({where}): "
        "lower learning_rate"
    )
