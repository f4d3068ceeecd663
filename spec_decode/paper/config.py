"""What a reproduction run trains and measures: one frozen ``PaperConfig``, bound by gin.

    config = PaperConfig(models={"base": T5Config(...), "small": T5Config(...)},
                         target="base", drafts=("small",), distill_draft="small")

The models are named T5Configs (their vocab_size is replaced by the shared vocabulary's ids,
rounded up to 128; their dropout by each stage's). ``Budget`` says how long one model trains
in one stage: whichever of ``steps`` and ``seconds`` (wall clock after the first, compiled
step) ends first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from spec_decode.models.t5 import T5Config

TASKS = ("translation_en_de", "summarization")


def _check_int(name: str, value, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{name}={value!r} is not allowed: it must be an int >= {least}")


@dataclasses.dataclass(frozen=True)
class Budget:
    """One model's training in one stage.

    Attributes:
      steps, seconds: the step and wall-clock budgets (seconds None: steps only).
      batch_size: rows per step.
      schedule: 'rsqrt' or 'constant' (``train.TrainConfig``'s); base_learning_rate,
        warmup_steps: the schedule's (T5X: pre-training rsqrt 1.0 with 10k warmup steps, so
        0.01 for the first 10k; fine-tuning constant 0.001).
      dropout: the stage's dropout rate (T5X: 0 pre-training, 0.1 fine-tuning).
    """

    steps: int = 1000
    seconds: float | None = None
    batch_size: int = 128
    schedule: str = "rsqrt"
    base_learning_rate: float = 1.0
    warmup_steps: int = 1000
    dropout: float = 0.0

    def __post_init__(self):
        _check_int("steps", self.steps, 1)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("warmup_steps", self.warmup_steps, 1)
        if self.seconds is not None and not self.seconds > 0:
            raise ValueError(f"seconds={self.seconds!r} is not allowed: it must be > 0 or None")
        if self.schedule not in ("rsqrt", "constant"):
            raise ValueError(
                f"schedule={self.schedule!r} is not allowed: it must be 'rsqrt' or 'constant'"
            )
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout={self.dropout!r} is not allowed: it must be in [0, 1)")


@dataclasses.dataclass(frozen=True)
class PaperConfig:
    """The whole run (``configs/paper/reproduce.gin``; ``smoke.gin`` is a tiny one).

    Attributes:
      models: name -> T5Config of every model trained.
      target: the name of the target model; drafts: the draft names, smallest first.
      distill_draft: the draft distilled from each task's target (None: no distill stage);
        distill_objective: 'forward_kl' or 'on_policy'.
      tasks: the corpus tasks (``train.TASKS`` names).
      vocab_size, extra_ids: SentencePiece pieces and T5 sentinels of the shared vocabulary.
      max_input_length, max_target_length: S and T of training and of the measured inputs.
      pretrain_length: span-corruption inputs per row.
      pretrained: fine-tune from the pretrain stage's checkpoints (False: from random init,
        the pretrain stage not needed: a run too short to pre-train).
      train_examples: cut each task's training split to this many (None: all).
      data_workers: processes making the pre-training batches (0: the training process;
        span corruption makes about 16 batches of 128 a second on one core).
      pretrain, finetune, distill: the budgets of those stages, for every model unless
        ``model_budgets`` has '<stage>/<model>' (e.g. 'pretrain/base'): see ``budget``.
      eval_examples: validation examples evaluated during fine-tuning.
      test_examples: test inputs decoded by the quality and measure stages.
      gammas: the gammas measured (Figure 3's axis); Table 2 adds the paper's.
      temperatures: the sampling temperatures measured (the paper's 0 and 1).
      max_new_tokens: tokens decoded per input when measuring.
      measure_batch: rows per decoder call when measuring (the paper: 1).
      paper_gammas: also measure the paper's Table 2 gamma of each draft's counterpart.
      ngram_gamma: the gamma at which unigram and bigram drafts are measured (alpha only).
      repeats: timed passes over the test inputs (the median is kept, warm-up excluded).
      measure_seconds: what one measure unit (a draft of a task) is taken to need when a call
        has ``call_seconds`` (None: it always starts).
      measure_dtype: activations when timing ('bfloat16' on accelerators); the greedy
        equality check always runs in float32.
      cpu_drafts: the T5 drafts (names, the distilled one too) that the measure_cpu stage
        times again on the host's CPU cores, in float32 (empty: the stage does nothing);
        cpu_gammas, cpu_test_examples: its gammas and test inputs.
      paper_counterparts: draft name -> the paper's draft ('small', 'base', 'large') whose
        Table 2 and 3 numbers sit beside it.
      seed: every random choice of the run.
    """

    models: Mapping[str, T5Config]
    target: str
    drafts: tuple[str, ...]
    distill_draft: str | None = None
    distill_objective: str = "forward_kl"
    tasks: tuple[str, ...] = TASKS
    vocab_size: int = 32000
    extra_ids: int = 100
    max_input_length: int = 128
    max_target_length: int = 64
    pretrain_length: int = 128
    pretrained: bool = True
    train_examples: int | None = None
    data_workers: int = 0
    pretrain: Budget = Budget()
    finetune: Budget = Budget(dropout=0.1)
    distill: Budget = Budget()
    model_budgets: Mapping[str, Budget] = dataclasses.field(default_factory=dict)
    eval_examples: int = 512
    test_examples: int = 128
    gammas: tuple[int, ...] = (1, 2, 3, 5, 7, 10)
    temperatures: tuple[float, ...] = (0.0, 1.0)
    max_new_tokens: int = 64
    measure_batch: int = 1
    paper_gammas: bool = True
    ngram_gamma: int = 3
    repeats: int = 3
    measure_seconds: float | None = None
    measure_dtype: str = "bfloat16"
    cpu_drafts: tuple[str, ...] = ()
    cpu_gammas: tuple[int, ...] = (3,)
    cpu_test_examples: int = 8
    paper_counterparts: Mapping[str, str] = dataclasses.field(default_factory=dict)
    seed: int = 0

    def __post_init__(self):
        # gin hands lists; the config must stay hashable-looking and comparable.
        for name in ("drafts", "tasks", "gammas", "temperatures", "cpu_drafts", "cpu_gammas"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        names = sorted(self.models)
        if self.target not in self.models:
            raise ValueError(f"target={self.target!r} is not allowed: it must be one of {names}")
        if not self.drafts:
            raise ValueError("drafts=() is not allowed: give at least one draft model name")
        for draft in self.drafts:
            if draft not in self.models or draft == self.target:
                raise ValueError(
                    f"drafts={self.drafts!r} is not allowed: each must be one of {names} "
                    f"other than the target {self.target!r}"
                )
        if self.distill_draft is not None and self.distill_draft not in self.drafts:
            raise ValueError(
                f"distill_draft={self.distill_draft!r} is not allowed: it must be None or one "
                f"of the drafts {self.drafts}"
            )
        if self.distill_objective not in ("forward_kl", "on_policy"):
            raise ValueError(
                f"distill_objective={self.distill_objective!r} is not allowed: it must be "
                "'forward_kl' or 'on_policy'"
            )
        from spec_decode.train.data import TASKS as KNOWN

        for task in self.tasks:
            if task not in KNOWN:
                raise ValueError(
                    f"tasks={self.tasks!r} is not allowed: each must be one of {sorted(KNOWN)}"
                )
        for name in ("max_input_length", "max_target_length", "pretrain_length"):
            _check_int(name, getattr(self, name), 4)
        for name in ("test_examples", "max_new_tokens", "measure_batch", "repeats"):
            _check_int(name, getattr(self, name), 1)
        _check_int("eval_examples", self.eval_examples, 1)
        _check_int("data_workers", self.data_workers, 0)
        _check_int("ngram_gamma", self.ngram_gamma, 1)
        if self.test_examples < self.measure_batch:
            raise ValueError(
                f"test_examples={self.test_examples} is not allowed: it must be at least "
                f"measure_batch={self.measure_batch}"
            )
        if not self.gammas or any(isinstance(g, bool) or int(g) != g or g < 1 for g in self.gammas):
            raise ValueError(f"gammas={self.gammas!r} is not allowed: ints >= 1, at least one")
        if not self.cpu_gammas or any(
            isinstance(g, bool) or int(g) != g or g < 1 for g in self.cpu_gammas
        ):
            raise ValueError(
                f"cpu_gammas={self.cpu_gammas!r} is not allowed: ints >= 1, at least one"
            )
        allowed = [*self.drafts] + ([self.distilled_name] if self.distill_draft else [])
        if any(name not in allowed for name in self.cpu_drafts):
            raise ValueError(
                f"cpu_drafts={self.cpu_drafts!r} is not allowed: each must be one of {allowed}"
            )
        if self.cpu_drafts and self.cpu_test_examples < self.measure_batch:
            raise ValueError(
                f"cpu_test_examples={self.cpu_test_examples} is not allowed: it must be at "
                f"least measure_batch={self.measure_batch}"
            )
        if any(t < 0 for t in self.temperatures) or not self.temperatures:
            raise ValueError(f"temperatures={self.temperatures!r} is not allowed: each >= 0")
        for key in self.model_budgets:
            stage, _, model = key.partition("/")
            if stage not in ("pretrain", "finetune", "distill") or model not in self.models:
                raise ValueError(
                    f"model_budgets key {key!r} is not allowed: it must be '<stage>/<model>' with "
                    f"stage pretrain, finetune or distill and model one of {names}"
                )
        for draft, paper in self.paper_counterparts.items():
            if draft not in self.drafts or paper not in ("small", "base", "large"):
                raise ValueError(
                    f"paper_counterparts[{draft!r}]={paper!r} is not allowed: keys are drafts "
                    f"{self.drafts}, values 'small', 'base' or 'large'"
                )

    @property
    def model_names(self) -> tuple[str, ...]:
        """The target, then the drafts: every model pre-trained and fine-tuned."""
        return (self.target, *self.drafts)

    def budget(self, stage: str, model: str) -> Budget:
        """The budget of ``model`` in ``stage``: ``model_budgets``' entry or the stage's."""
        return self.model_budgets.get(f"{stage}/{model}", getattr(self, stage))

    @property
    def distilled_name(self) -> str | None:
        return None if self.distill_draft is None else f"{self.distill_draft}_distilled"
