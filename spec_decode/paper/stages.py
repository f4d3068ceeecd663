"""The quality, measure and report stages of ``Pipeline`` (training stages: ``training.py``).

quality: BLEU (translation) or ROUGE (summarization) of the target, each draft, the distilled
draft and the trivial baseline on the test inputs (``spec_decode.train.metrics``).
measure: per task, the autoregressive baseline at each temperature, then each draft (T5,
distilled, unigram, bigram) at each temperature and gamma, with c and, for the T5 drafts, the
float32 greedy equality check. measure_cpu: the same timings on the host's CPU cores, for
``cpu_drafts`` only. report: results.json, the tables and one figure per task.
"""

from __future__ import annotations

import dataclasses
import json
import platform
from contextlib import nullcontext
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import jax

from spec_decode import train
from spec_decode.paper import figure, measure, ngram_drafts, tables
from spec_decode.paper.pipeline import Pipeline, measured_gammas

QUALITY_COLUMNS = ("task", "model", "metric", "score")


def quality(run: Pipeline) -> None:
    from spec_decode.train import metrics

    c = run.config
    spec_fields = train.TASKS
    for task in c.tasks:

        def score_all(directory: Path, task=task) -> dict:
            rows = run.pairs(task, "test")
            field = spec_fields[task]
            inputs = [x[len(field.prefix) :] for x, _ in rows]  # the raw text, task adds prefix
            references = [y for _, y in rows]
            scores = {"baseline": metrics.score(task, metrics.baseline_predictions(task, inputs),
                                                references)}  # fmt: skip
            for name, (config_name, checkpoint) in run.t5_models(task).items():
                model, params = run.load(config_name, checkpoint)
                predictions = metrics.predict(
                    model.config, params, run.vocabulary, inputs, task,
                    batch_size=min(64, len(inputs)), max_new_tokens=c.max_target_length,
                    max_input_length=c.max_input_length,
                )  # fmt: skip
                scores[name] = metrics.score(task, predictions, references)
                (directory / f"{name}.predictions.json").write_text(json.dumps(predictions))
            return {"task": task, "examples": len(rows), "scores": scores}

        run.unit(run.work / "quality" / task, None, score_all)


def measure_all(run: Pipeline) -> None:
    for task in run.config.tasks:
        _measure_task(run, task, _Where.accelerator(run.config))


def measure_cpu(run: Pipeline) -> None:
    """``cpu_drafts`` and the baseline timed on the host's CPU cores (float32, ``cpu_gammas``,
    the first ``cpu_test_examples`` test inputs), under ``measure_cpu/``."""
    if not run.config.cpu_drafts:
        return
    for task in run.config.tasks:
        _measure_task(run, task, _Where.cpu(run.config))


@dataclasses.dataclass(frozen=True)
class _Where:
    """Where and how a measure stage times: its directory, device, dtype, inputs, drafts."""

    stage: str
    device: Any
    dtype: str
    examples: int
    drafts: tuple[str, ...] | None  # None: every draft, n-gram ones too
    gammas: tuple[int, ...] | None  # None: ``measured_gammas``
    greedy: bool

    @classmethod
    def accelerator(cls, c) -> _Where:
        return cls("measure", None, c.measure_dtype, c.test_examples, None, None, True)

    @classmethod
    def cpu(cls, c) -> _Where:
        return cls("measure_cpu", jax.devices("cpu")[0], "float32", c.cpu_test_examples,
                   tuple(c.cpu_drafts), tuple(c.cpu_gammas), False)  # fmt: skip


class _Target:
    """The task's target and test batches, loaded when a unit first needs them (a resumed
    run whose units are all done loads nothing)."""

    def __init__(self, run: Pipeline, task: str, entry: tuple[str, str], where: _Where):
        self.run, self.task, self.entry, self.where = run, task, entry, where

    @cached_property
    def model(self):
        return _load(self.run, self.entry, self.where)

    @cached_property
    def batches(self):
        tokens = self.run.data(self.task).test_tokens(self.where.examples)
        return measure.encoder_batches(tokens, self.run.config.measure_batch)


def _load(run: Pipeline, entry: tuple[str, str], where: _Where):
    model, params = run.load(*entry, dtype=where.dtype)
    if where.device is not None:
        params = jax.device_put(params, where.device)
    return model, params


def _measure_task(run: Pipeline, task: str, where: _Where) -> None:
    c = run.config
    directory = run.work / where.stage / task
    models = run.t5_models(task)
    target_entry = models.pop(c.target)
    if where.drafts is not None:
        unknown = [name for name in where.drafts if name not in models]
        if unknown:
            raise ValueError(
                f"cpu_drafts={where.drafts!r} is not allowed: {unknown} are not among the "
                f"trained drafts {sorted(models)}"
            )
        models = {name: models[name] for name in where.drafts}
    target = _Target(run, task, target_entry, where)
    common = dict(max_new_tokens=c.max_new_tokens, repeats=c.repeats, seed=c.seed)
    device = jax.default_device(where.device) if where.device is not None else nullcontext()
    with device:
        _measure_units(run, task, where, directory, models, target_entry, target, common)


def _measure_units(run, task, where, directory, models, target_entry, target, common) -> None:
    c = run.config

    def baseline(_, temperature: float) -> dict:
        return measure.measure_baseline(*target.model, target.batches, temperature=temperature,
                                        **common)  # fmt: skip

    baselines = {
        float(t): run.unit(
            directory / f"baseline_T{t:g}", c.measure_seconds, partial(baseline, temperature=t)
        )
        for t in c.temperatures
    }

    def t5_draft(_, name: str) -> dict:
        config_name, checkpoint = models[name]
        paper = c.paper_counterparts.get(config_name)
        draft = _load(run, models[name], where)
        if where.gammas is not None:
            gammas = sorted(where.gammas)
        elif c.paper_gammas:
            gammas = measured_gammas(c, task, paper)
        else:
            gammas = sorted(set(c.gammas) | {c.ngram_gamma})
        record = measure.measure_draft(
            *target.model, *draft, target.batches, baselines, gammas=gammas,
            temperatures=c.temperatures, progress=run.progress, **common,
        )  # fmt: skip
        if where.greedy:
            record["greedy"] = greedy(run, target_entry, models[name], target.batches)
        kind = "distilled" if name == c.distilled_name else "t5"
        return {"kind": kind, "paper": paper, **record}

    for name in models:
        run.unit(directory / name, c.measure_seconds, partial(t5_draft, name=name))
    if where.drafts is not None:
        return

    def counted(_, kind: str) -> dict:
        sequences = ngram_drafts.target_sequences(run.data(task).train)
        model, params = target.model
        draft = ngram_drafts.ngram_draft(kind, sequences, model.vocab_size)
        record = measure.measure_draft(
            model, params, *draft, target.batches, baselines, gammas=[c.ngram_gamma],
            temperatures=c.temperatures, progress=run.progress, **common,
        )  # fmt: skip
        return {"kind": "ngram", "paper": kind, **record}

    for kind in ngram_drafts.NGRAM_DRAFTS:
        run.unit(directory / kind, c.measure_seconds, partial(counted, kind=kind))


def greedy(run: Pipeline, target_entry, draft_entry, batches) -> dict[str, Any]:
    """The float32 greedy check of one T5 draft against the target, at ``ngram_gamma``."""
    target, target_params = run.load(*target_entry, dtype="float32")
    draft, draft_params = run.load(*draft_entry, dtype="float32")
    return measure.greedy_equality(
        target, target_params, draft, draft_params, batches,
        gamma=run.config.ngram_gamma, max_new_tokens=run.config.max_new_tokens,
    )  # fmt: skip


def collect(run: Pipeline) -> dict[str, Any]:
    """Every finished unit's record, in results.json's layout (``tables``' docstring)."""
    c = run.config
    results: dict[str, Any] = {
        "config": json.loads(json.dumps(_config_dict(c), default=str)),
        "hardware": {
            "platform": jax.devices()[0].platform,
            "device": str(jax.devices()[0]),
            "devices": jax.device_count(),
            "machine": platform.processor() or platform.machine(),
        },  # fmt: skip
        "alpha_gamma": c.ngram_gamma,
        "training": {},
        "tasks": {},
    }
    for name in c.model_names:
        results["training"][f"pretrain/{name}"] = _optional(run, "pretrain", name)
    for task in c.tasks:
        names = [*c.model_names] + ([c.distilled_name] if c.distill_draft else [])
        for name in names:
            stage = "distill" if name == c.distilled_name else "finetune"
            results["training"][f"{stage}/{task}/{name}"] = _optional(run, stage, task, name)
        drafts = {}
        for name in [*c.drafts, c.distilled_name, *ngram_drafts.NGRAM_DRAFTS]:
            record = None if name is None else _optional(run, "measure", task, name)
            if record is not None:
                drafts[name] = record
        baseline = {f"{t:g}": _optional(run, "measure", task, f"baseline_T{t:g}")
                    for t in c.temperatures}  # fmt: skip
        cpu = {name: _optional(run, "measure_cpu", task, name) for name in c.cpu_drafts}
        cpu_baseline = {
            f"{t:g}": _optional(run, "measure_cpu", task, f"baseline_T{t:g}")
            for t in c.temperatures
        }
        results["tasks"][task] = {
            "baseline": baseline,
            "drafts": drafts,
            "quality": _optional(run, "quality", task),
            "cpu": {
                "baseline": cpu_baseline,
                "drafts": {name: record for name, record in cpu.items() if record is not None},
            },
        }
    results["projection"] = projection(run.work / "projection" / "t5_scale.json")
    return results


def projection(path: Path) -> dict[str, Any] | None:
    """c of T5 1.1 small, base and large against XXL from ``scripts/benchmark_t5_scale.py``'s
    JSON (random weights, the same machine), or None when the file was not written."""
    if not path.is_file():
        return None
    scale = json.loads(path.read_text())
    if scale.get("target") != "xxl":
        raise ValueError(
            f"{path} is not allowed: its target is {scale.get('target')!r}; run "
            "benchmark_t5_scale.py with --target xxl"
        )
    return {
        "source": str(path),
        "device": scale.get("device"),
        "c_vs_xxl": {k: v for k, v in scale["c_vs_target"].items() if v is not None},
    }


def report(run: Pipeline) -> None:
    results = collect(run)
    out = run.results
    out.mkdir(parents=True, exist_ok=True)
    table2 = tables.table2_rows(results)
    table2_cpu = tables.table2_rows(results, where="cpu")
    table3 = tables.table3_rows(results, results["alpha_gamma"])
    quality_rows = [
        {"task": task, "model": name, "metric": metric, "score": value}
        for task, measured in results["tasks"].items()
        if measured["quality"]
        for name, scores in measured["quality"]["scores"].items()
        for metric, value in scores.items()
    ]
    for measured in results["tasks"].values():
        measured["target_beats_all"] = target_beats_all(measured["quality"], run.config.target)
    results["table2"], results["table3"], results["quality"] = table2, table3, quality_rows
    results["table2_cpu"] = table2_cpu
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    (out / "table2.md").write_text(tables.markdown(table2, tables.TABLE2_COLUMNS))
    if table2_cpu:
        (out / "table2_cpu.md").write_text(tables.markdown(table2_cpu, tables.TABLE2_COLUMNS))
    (out / "table3.md").write_text(tables.markdown(table3, tables.TABLE3_COLUMNS))
    (out / "quality.md").write_text(tables.markdown(quality_rows, QUALITY_COLUMNS))
    for task, measured in results["tasks"].items():
        if measured["drafts"]:
            figure.plot_task(task, measured, out / f"figure3_{task}.png")
    run.log.append(f"report {out}")


def target_beats_all(quality: dict | None, target: str) -> bool | None:
    """Whether the target scores above every draft and the baseline in every metric (the
    issue's condition that the models are real); None without quality scores."""
    if not quality:
        return None
    scores = quality["scores"]
    return all(
        scores[target][metric] > other[metric]
        for name, other in scores.items()
        if name != target
        for metric in other
    )


def _optional(run: Pipeline, *parts: str) -> dict | None:
    done = run.work.joinpath(*parts, "done.json")
    return json.loads(done.read_text()) if done.exists() else None


def _config_dict(config) -> dict:
    import dataclasses

    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
