"""Distillation: fit the draft's next-token distributions to the frozen target's.

Loss: forward KL(p || q) per position, with p renormalised over the draft's support (the
subset head cannot reach other tokens). Forward KL is DistillSpec's default for
target-generated data; it pushes q to cover where p has mass, which is what acceptance
sum_x min(p, q) rewards. Only the draft's own layers train; the shared table is frozen.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from spec_decode.distill.draft import SharedEmbeddingDraft


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
        hidden = draft.lm.forward(params["body"], tokens, hidden_only=True)
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
) -> tuple[dict, list[float]]:  # fmt: skip
    """AdamW with warm-up and cosine decay over ``steps``; returns trained params and losses."""
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, learning_rate, min(200, steps // 10 + 1), steps, learning_rate * 0.05
    )
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, 0.01))
    own, embed, subset = _split(params)
    opt_state = optimizer.init(own)
    step = make_train_step(target, draft, optimizer)
    rng = np.random.default_rng(seed)
    width = sequences.shape[1]
    # Position t's loss predicts token t + 1; only positions whose next token is real count.
    valid = np.arange(width)[None, :] < (lengths[:, None] - 1)
    losses = []
    for _ in tqdm(range(steps), desc="distilling"):
        rows = rng.integers(0, len(sequences), batch)
        own, opt_state, loss = step(
            own, opt_state, embed, subset, target_params, jnp.asarray(sequences[rows]),
            jnp.asarray(valid[rows], jnp.float32),
        )  # fmt: skip
        losses.append(loss)
    return _join(own, embed, subset), [float(x) for x in jax.device_get(losses)]
