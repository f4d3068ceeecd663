"""Training T5 (``models/t5``'s ``Transformer``, T5X's tree) on T5X-style batches.

    trainer = T5Trainer(T5Config(...), TrainConfig(steps=20_000, train_seconds=3600))
    state = trainer.init_state(jax.random.key(0))
    state, history = trainer.fit(state, train_batches, eval_batches)
    save_checkpoint(state.params, "/tmp/model", int(state.step))   # checkpoint_<step>/, Orbax

One jitted step: teacher-forced logits, T5X's loss (``loss.py``: cross-entropy + z-loss),
Adafactor with T5X's defaults and rsqrt schedule (``optim.py``). Parameters stay float32; the
activations follow ``T5Config.dtype`` ('bfloat16' on accelerators). Dropout runs when
``T5Config.dropout_rate`` > 0 (T5X fine-tunes with 0.1, T5 1.1 pre-trained with 0), with a key
folded from the seed and the step, so a run is reproducible.

The loss is divided by ``loss_normalizing_factor`` or, when None, by the batch's target tokens
(a per-token mean). T5X's None means an unnormalised sum; Adafactor's relative, clipped updates
make the two train alike, and the mean reads the same at any batch size.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from tqdm import tqdm

from spec_decode.models.t5 import T5Config, T5Decoding
from spec_decode.train.loss import cross_entropy_sums
from spec_decode.train.optim import adafactor, rsqrt_schedule

Params = Any
_MODEL_KEYS = (
    "encoder_input_tokens",
    "decoder_input_tokens",
    "decoder_target_tokens",
    "encoder_segment_ids",
    "decoder_segment_ids",
    "encoder_positions",
    "decoder_positions",
)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How long and how to train; static (a change recompiles the step).

    Attributes:
      steps: the step budget.
      train_seconds: a wall-clock budget counted from the end of the first step (its
        compilation excluded: on an H200 it took a 2-layer T5's whole 40 s), or None;
        training stops at whichever budget ends first.
      schedule: 'rsqrt' (``optim.rsqrt_schedule``: T5X's pre-training 'constant *
        rsqrt_decay') or 'constant' (base_learning_rate throughout: T5X's fine-tuning, 0.001).
      base_learning_rate, warmup_steps, linear_warmup: ``optim.rsqrt_schedule``'s.
      z_loss: T5X's 1e-4. label_smoothing: T5X's default 0.
      loss_normalizing_factor: None divides by the batch's target tokens (module docstring).
      eval_every: evaluate every this many steps (and at the end); 0 only at the end.
      log_every: average and report the training loss every this many steps.
      seed: dropout keys (parameters take their key from ``init_state``).
      progress: show a tqdm bar.
    """

    # Budgets and reporting are not read by the compiled step: compare=False keeps them out of
    # the hash, so changing them reuses the compiled step.
    steps: int = dataclasses.field(default=10_000, compare=False)
    train_seconds: float | None = dataclasses.field(default=None, compare=False)
    schedule: str = "rsqrt"
    base_learning_rate: float = 1.0
    warmup_steps: int = 10_000
    linear_warmup: bool = False
    z_loss: float = 1e-4
    label_smoothing: float = 0.0
    loss_normalizing_factor: float | None = None
    eval_every: int = dataclasses.field(default=1000, compare=False)
    log_every: int = dataclasses.field(default=100, compare=False)
    seed: int = 0
    progress: bool = dataclasses.field(default=True, compare=False)

    def __post_init__(self):
        for name, least in (("steps", 1), ("warmup_steps", 1), ("eval_every", 0), ("log_every", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{name}={value!r} is not allowed: it must be an int >= {least}")
        if self.train_seconds is not None and not self.train_seconds > 0:
            raise ValueError(
                f"train_seconds={self.train_seconds!r} is not allowed: it must be > 0 or None"
            )
        if not 0 <= self.z_loss:
            raise ValueError(f"z_loss={self.z_loss!r} is not allowed: it must be >= 0")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(
                f"label_smoothing={self.label_smoothing!r} is not allowed: it must be in [0, 1)"
            )
        factor = self.loss_normalizing_factor
        if factor is not None and not factor > 0:
            raise ValueError(
                f"loss_normalizing_factor={factor!r} is not allowed: it must be > 0 or None"
            )
        rsqrt_schedule(self.base_learning_rate, self.warmup_steps)  # checks both
        if self.schedule not in ("rsqrt", "constant"):
            raise ValueError(
                f"schedule={self.schedule!r} is not allowed: it must be 'rsqrt' or 'constant'"
            )


@struct.dataclass
class TrainState:
    """What a step carries: step [] int32, params (T5X's tree, float32), Adafactor's state."""

    step: jax.Array
    params: Params
    opt_state: optax.OptState


@dataclasses.dataclass(frozen=True)
class T5Trainer:
    """A T5 model config and a training config; hashable, so its methods jit with it static."""

    model_config: T5Config
    config: TrainConfig = TrainConfig()

    @property
    def model(self) -> T5Decoding:
        return T5Decoding(self.model_config)

    @property
    def schedule(self) -> optax.Schedule:
        c = self.config
        if c.schedule == "constant":
            return optax.constant_schedule(c.base_learning_rate)
        return rsqrt_schedule(c.base_learning_rate, c.warmup_steps, c.linear_warmup)

    @property
    def optimizer(self) -> optax.GradientTransformation:
        return adafactor(self.schedule)

    def init_state(self, key: jax.Array, params: Params | None = None) -> TrainState:
        """Random T5X-initialised params (or the given ones, e.g. a checkpoint's) and step 0."""
        if params is None:
            params = self._init_params(key)
        params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
        return TrainState(jnp.zeros((), jnp.int32), params, self._init_opt_state(params))

    @functools.partial(jax.jit, static_argnums=0)
    def _init_params(self, key: jax.Array) -> Params:
        return self.model.init(key)

    # One compiled call: run eagerly, Adafactor's init compiles a small kernel per leaf shape
    # (most of a CPU smoke run's start-up).
    @functools.partial(jax.jit, static_argnums=0)
    def _init_opt_state(self, params: Params) -> optax.OptState:
        return self.optimizer.init(params)

    def logits(self, params: Params, batch: dict, dropout_key: jax.Array | None = None):
        """Teacher-forced logits [B, T, V] (float32); dropout when a key is given."""
        inputs = {k: jnp.asarray(batch[k]) for k in _MODEL_KEYS if k in batch}
        enable = dropout_key is not None and self.model_config.dropout_rate > 0
        rngs = {"dropout": dropout_key} if enable else None
        return self.model.module.apply(
            {"params": params}, **inputs, enable_dropout=enable, rngs=rngs
        )

    def _sums(self, params, batch, dropout_key=None) -> dict[str, jax.Array]:
        logits = self.logits(params, batch, dropout_key)
        c = self.config
        return cross_entropy_sums(
            logits,
            batch["decoder_target_tokens"],
            batch["decoder_loss_weights"],
            z_loss=c.z_loss,
            label_smoothing=c.label_smoothing,
        )

    @functools.partial(jax.jit, static_argnums=0, donate_argnums=1)
    def train_step(self, state: TrainState, batch: dict) -> tuple[TrainState, dict]:
        """One Adafactor step on one batch; metrics are the batch's sums (``loss.py``)."""
        key = jax.random.fold_in(jax.random.key(self.config.seed), state.step)

        def loss_fn(params):
            sums = self._sums(params, batch, key)
            factor = self.config.loss_normalizing_factor
            scale = jnp.maximum(sums["weight"], 1.0) if factor is None else factor
            return sums["loss"] / scale, sums

        grads, sums = jax.grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        sums["learning_rate"] = self.schedule(state.step)
        return TrainState(state.step + 1, params, opt_state), sums

    @functools.partial(jax.jit, static_argnums=0)
    def eval_step(self, params: Params, batch: dict) -> dict:
        """The batch's sums without dropout."""
        return self._sums(params, batch)

    def evaluate(self, params: Params, batches: Iterable[dict]) -> dict[str, float]:
        """Per-token 'loss', 'z_loss', 'accuracy' over every batch, and the 'tokens' counted."""
        totals = None
        for batch in batches:
            sums = self.eval_step(params, batch)
            totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
        if totals is None:
            raise ValueError("batches is empty: there is nothing to evaluate")
        totals = jax.device_get(totals)
        tokens = max(float(totals["weight"]), 1.0)
        return {
            "loss": float(totals["loss"]) / tokens,
            "z_loss": float(totals["z_loss"]) / tokens,
            "accuracy": float(totals["correct"]) / tokens,
            "tokens": int(totals["weight"]),
        }

    def fit(
        self,
        state: TrainState,
        train_batches: Iterator[dict],
        eval_batches: Iterable[dict] | None = None,
    ) -> tuple[TrainState, dict[str, list]]:
        """Step until ``steps`` or ``train_seconds`` runs out (or the iterator does).

        ``eval_batches`` is re-iterated at every evaluation (a list, say). Returns the state and
        ``{'train': [(step, per-token loss, lr)], 'eval': [(step, evaluate's dict)]}``.
        """
        c = self.config
        history: dict[str, list] = {"train": [], "eval": []}
        start = time.perf_counter()
        first = int(state.step)
        progress = tqdm(total=c.steps, desc="training", disable=not c.progress)
        pending = []

        def log():
            sums = jax.device_get(pending)
            loss = sum(float(s["loss"]) for s in sums) / max(
                sum(float(s["weight"]) for s in sums), 1
            )
            history["train"].append((int(state.step), loss, float(sums[-1]["learning_rate"])))
            progress.set_postfix(loss=f"{loss:.3f}")
            pending.clear()

        def evaluate():
            metrics = self.evaluate(state.params, eval_batches)
            history["eval"].append((int(state.step), metrics))
            progress.write(f"step {int(state.step)}: " + _format(metrics))

        for done in range(1, c.steps + 1):
            batch = next(train_batches, None)
            if batch is None:
                break
            state, sums = self.train_step(state, batch)
            if done == 1:  # the budget starts once the step is compiled and has run
                jax.block_until_ready(sums)
                history["first_step_seconds"] = time.perf_counter() - start
                start = time.perf_counter()
            pending.append(sums)
            progress.update(1)
            if done % c.log_every == 0:
                log()
            if eval_batches is not None and c.eval_every and done % c.eval_every == 0:
                evaluate()
            if c.train_seconds is not None and time.perf_counter() - start >= c.train_seconds:
                progress.write(f"train_seconds={c.train_seconds} reached after {done} steps")
                break
        if pending:
            log()
        if eval_batches is not None and (
            not history["eval"] or history["eval"][-1][0] != int(state.step)
        ):
            evaluate()
        progress.close()
        seconds = time.perf_counter() - start
        history["seconds"] = seconds
        history["steps"] = int(state.step) - first
        return state, history


def _format(metrics: dict[str, float]) -> str:
    return ", ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()
    )


def save_checkpoint(params: Params, model_dir: str, step: int, fmt: str = "orbax") -> str:
    """Write ``<model_dir>/checkpoint_<step>`` in T5X's Orbax (default) or legacy format."""
    from spec_decode.formats.t5x import save_t5x_checkpoint_legacy, save_t5x_checkpoint_orbax

    writers = {"orbax": save_t5x_checkpoint_orbax, "legacy": save_t5x_checkpoint_legacy}
    if fmt not in writers:
        raise ValueError(f"fmt={fmt!r} is not allowed: it must be one of {sorted(writers)}")
    path = os.path.join(os.fspath(model_dir), f"checkpoint_{int(step)}")
    params = jax.tree.map(np.asarray, jax.device_get(params))
    return writers[fmt](params, path, step=int(step))


def load_params(path: str, model_config: T5Config | None = None) -> Params:
    """A T5X checkpoint's params (either format), checked against ``model_config`` if given."""
    from spec_decode.formats.t5x import load_t5x_checkpoint

    expected = None
    if model_config is not None:
        expected = jax.eval_shape(T5Decoding(model_config).init, jax.random.key(0))
    return load_t5x_checkpoint(path, expected=expected)["target"]
