"""scripts/reproduce_paper.py and spec_decode.paper: the smoke pipeline end to end on CPU, the
tables' layouts, resumability, Theorem 3.8's column and the greedy equality check.

One smoke run (module fixture) serves the tests that read its outputs; the notebook test
draws from its results.json too.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import numpy as np
import pytest

from spec_decode import paper
from spec_decode.core import theory

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "reproduction.ipynb"


def _script():
    spec = importlib.util.spec_from_file_location(
        "reproduce_paper", ROOT / "scripts" / "reproduce_paper.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    work = tmp_path_factory.mktemp("paper_smoke")
    start = time.perf_counter()
    status = _script().main(["--smoke", "--work", str(work), "--no_progress"])
    return {"work": work, "status": status, "seconds": time.perf_counter() - start}


def test_smoke_pipeline_runs_every_stage(smoke):
    assert smoke["status"] == 0
    work, results_dir = smoke["work"], smoke["work"] / "results"
    for name in ("results.json", "table2.md", "table3.md", "quality.md"):
        assert (results_dir / name).is_file(), name
    results = json.loads((results_dir / "results.json").read_text())
    config = results["config"]
    assert set(results["tasks"]) == set(config["tasks"]) == {"translation_en_de", "summarization"}
    for task, measured in results["tasks"].items():
        assert (results_dir / f"figure3_{task}.png").stat().st_size > 0
        drafts = measured["drafts"]
        assert set(drafts) == {*config["drafts"], f"{config['distill_draft']}_distilled",
                               "unigram", "bigram"}  # fmt: skip
        for draft in drafts.values():
            temperatures = {run["temperature"] for run in draft["runs"]}
            assert temperatures == {0.0, 1.0}
            assert draft["c"] > 0
        scores = measured["quality"]["scores"]
        assert set(scores) == {"baseline", config["target"], *drafts} - {"unigram", "bigram"}
        cpu = measured["cpu"]
        assert set(cpu["drafts"]) == set(config["cpu_drafts"]) == {"draft_distilled"}
        assert {
            (r["temperature"], r["gamma"]) for r in cpu["drafts"]["draft_distilled"]["runs"]
        } == {(0.0, 2), (1.0, 2)}
        assert all(cpu["baseline"][t]["tokens_per_s"] > 0 for t in ("0", "1"))
    assert (results_dir / "table2_cpu.md").is_file()
    assert {r["draft"] for r in results["table2_cpu"]} == {"draft_distilled"}
    for key, record in results["training"].items():
        assert record is not None and record["steps"] >= 1, key
    assert (work / "vocab" / "spm.model").is_file()


def test_report_projects_with_the_c_of_t5_sizes_against_xxl(smoke, tmp_path):
    """With benchmark_t5_scale.py's JSON in projection/, Table 2 gets Theorem 3.8 at our alpha
    and the counterpart's c against XXL; a JSON timed against another target is refused."""
    import shutil

    work = tmp_path / "work"
    shutil.copytree(smoke["work"], work, symlinks=True)
    (work / "projection").mkdir()
    scale = {"target": "xxl", "device": "cpu", "c_vs_target": {"small": 0.25, "base": 0.4}}
    (work / "projection" / "t5_scale.json").write_text(json.dumps(scale))
    argv = ["--smoke", "--work", str(work), "--no_progress", "--stages", "report"]
    argv += ["--corpus", str(work / "smoke_corpus")]
    assert _script().main(argv) == 0
    results = json.loads((work / "results" / "results.json").read_text())
    assert results["projection"]["c_vs_xxl"] == {"small": 0.25, "base": 0.4}
    rows = results["table2"]
    assert rows and all(r["paper draft"] == "small" for r in rows)
    for row in rows:
        assert row["XXL c"] == 0.25
        expected = theory.expected_speedup(row["alpha"], row["gamma"], 0.25)
        assert row["XXL expected"] == pytest.approx(expected, rel=1e-12)
    scale["target"] = "large"
    (work / "projection" / "t5_scale.json").write_text(json.dumps(scale))
    assert _script().main(argv) == 2


def test_greedy_speculative_equals_autoregressive_on_every_trained_pair(smoke):
    results = json.loads((smoke["work"] / "results" / "results.json").read_text())
    for measured in results["tasks"].values():
        for name, draft in measured["drafts"].items():
            if draft["kind"] == "ngram":
                continue
            greedy = draft["greedy"]
            assert greedy["rows"] > 0 and greedy["identical"], (name, greedy)


def test_second_run_skips_every_done_stage(smoke):
    work = smoke["work"]
    marks = {p: p.stat().st_mtime_ns for p in work.rglob("done.json")}
    script = _script()
    start = time.perf_counter()
    stages = "vocab,pretrain,finetune,distill,quality,measure,measure_cpu"
    argv = ["--smoke", "--work", str(work), "--no_progress", "--stages", stages]
    assert script.main(argv) == 0
    assert time.perf_counter() - start < 30
    assert {p: p.stat().st_mtime_ns for p in work.rglob("done.json")} == marks


def test_table2_theorem_column_is_core_theory(smoke):
    results = json.loads((smoke["work"] / "results" / "results.json").read_text())
    rows = results["table2"]
    assert rows
    for row in rows:
        expected = theory.expected_speedup(row["alpha"], row["gamma"], row["c"])
        assert row["expected"] == pytest.approx(expected, rel=1e-12)
        assert row["measured/expected"] == pytest.approx(row["measured"] / expected)
    header = (smoke["work"] / "results" / "table2.md").read_text().splitlines()[0]
    assert header == "| " + " | ".join(paper.TABLE2_COLUMNS) + " |"


def _record(alpha, gamma, temperature, speedup, c=0.1):
    baseline = {"tokens_per_s": 100.0}
    record = {"alpha": alpha, "tokens_per_target_call": 2.0, "tokens_per_s": 100.0 * speedup}
    return paper.run_record(record, baseline, temperature, gamma, c)


def test_table_layouts_put_the_paper_beside_ours():
    runs = [_record(0.6, g, t, s) for t in (0.0, 1.0) for g, s in ((3, 1.5), (7, 1.2))]
    results = {"tasks": {"translation_en_de": {"drafts": {
        "mine": {"kind": "t5", "paper": "small", "c": 0.1, "runs": runs},
        "unigram": {"kind": "ngram", "paper": "unigram", "c": 0.01,
                    "runs": [_record(0.1, 3, t, 0.9, 0.01) for t in (0.0, 1.0)]},
    }}}}  # fmt: skip
    rows = paper.table2_rows(results)
    # The paper's gamma (7 at T=0 and T=1 for EnDe/small), then the best measured (3).
    assert [(r["T"], r["gamma"]) for r in rows] == [(0.0, 7), (0.0, 3), (1.0, 7), (1.0, 3)]
    assert rows[0]["paper alpha"] == 0.75 and rows[0]["paper measured"] == 3.4
    assert rows[2]["paper alpha"] == 0.62 and rows[2]["paper gamma"] == 7
    assert all(r["draft"] == "mine" for r in rows)  # n-gram drafts are Table 3 only
    table3 = paper.table3_rows(results, alpha_gamma=3)
    assert [r["draft"] for r in table3] == ["mine", "unigram"]
    assert table3[1]["paper alpha T=0"] == 0.08 and table3[1]["paper alpha T=1"] == 0.07
    assert table3[0]["alpha T=1"] == 0.6
    text = paper.markdown(table3, paper.TABLE3_COLUMNS)
    assert text.splitlines()[0] == "| " + " | ".join(paper.TABLE3_COLUMNS) + " |"
    assert len(text.splitlines()) == 2 + len(table3)


def test_greedy_check_compares_tokens(monkeypatch):
    """A speculative decode that changes one token is caught: the check reads the tokens."""
    from spec_decode.models.t5 import T5Config, T5Decoding
    from spec_decode.paper import measure

    config = T5Config(vocab_size=32, emb_dim=16, num_heads=2, head_dim=8, mlp_dim=32,
                      num_encoder_layers=1, num_decoder_layers=1, dtype="float32")  # fmt: skip
    model = T5Decoding(config)
    import jax

    params = model.init(jax.random.key(0))
    batches = [np.array([[5, 6, 7, 1], [8, 9, 1, 0]], np.int32)]
    same = measure.greedy_equality(model, params, model, params, batches, gamma=2,
                                   max_new_tokens=4)  # fmt: skip
    assert same == {"gamma": 2, "rows": 2, "rows_identical": 2, "identical": True}
    original = measure.speculative_decode

    def changed(*args, **kwargs):
        result = original(*args, **kwargs)
        return result.replace(tokens=result.tokens.at[0, 0].add(1))

    monkeypatch.setattr(measure, "speculative_decode", changed)
    differ = measure.greedy_equality(model, params, model, params, batches, gamma=2,
                                     max_new_tokens=4)  # fmt: skip
    assert differ["rows_identical"] == 1 and not differ["identical"]


def test_bad_input_names_the_argument(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"stages='bogus' is not allowed: choose among vocab"):
        paper.check_stages(["bogus"])
    with pytest.raises(ValueError, match=r"scripts/build_corpus.py --out"):
        paper.check_corpus(tmp_path, ["summarization"])
    with pytest.raises(ValueError, match=r"target='nope' is not allowed"):
        paper.PaperConfig(models={"a": None}, target="nope", drafts=("a",))
    with pytest.raises(ValueError, match=r"seconds=-1 is not allowed"):
        paper.Budget(seconds=-1)
    two = {"models": {"a": None, "b": None}, "target": "a", "drafts": ("b",)}
    with pytest.raises(ValueError, match=r"cpu_drafts=\('c',\) is not allowed: each must be"):
        paper.PaperConfig(**two, cpu_drafts=("c",))
    with pytest.raises(ValueError, match=r"cpu_gammas=\(0,\) is not allowed"):
        paper.PaperConfig(**two, cpu_gammas=(0,))
    with pytest.raises(ValueError, match=r"data_workers=-1 is not allowed"):
        paper.PaperConfig(**two, data_workers=-1)
    assert _script().main(["--smoke", "--work", str(tmp_path), "--stages", "vocab,bogus"]) == 2
    assert "stages='vocab,bogus' is not allowed" in capsys.readouterr().err


def test_call_seconds_stops_before_a_unit_that_does_not_fit(tmp_path):
    corpus = paper.write_smoke_corpus(tmp_path / "corpus")
    script = _script()
    config = script.config_from_gin(["paper/smoke.gin"], [])
    run = paper.Pipeline(config, corpus, tmp_path / "work", call_seconds=5.0, progress=False)
    with pytest.raises(paper.OutOfTime, match="needs 60"):
        run.unit(tmp_path / "work" / "unit", 60.0, lambda d: {})
    first = run.unit(tmp_path / "work" / "unit", 1.0, lambda d: {"x": 1})
    assert first["x"] == 1 and 0 <= first["unit_seconds"] < 5  # the record says how long
    assert run.unit(tmp_path / "work" / "unit", 60.0, lambda d: {"x": 2}) == first  # done


def test_reproduction_notebook_draws_the_smoke_results(smoke):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    (cell,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    cell.source += f"\nRESULTS = {str(smoke['work'] / 'results' / 'results.json')!r}\n"
    client = nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )  # fmt: skip
    client.execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum(o.output_type == "display_data" for o in outputs) >= 2  # a figure per task


def test_real_config_is_the_issues_structure():
    config = _script().config_from_gin(["paper/reproduce.gin"], [])
    target = config.models[config.target]
    assert (target.emb_dim, target.num_encoder_layers, target.mlp_dim) == (768, 12, 2048)
    assert len(config.drafts) >= 3 and config.distill_draft in config.drafts
    sizes = [config.models[d].emb_dim * config.models[d].num_decoder_layers for d in config.drafts]
    assert sizes == sorted(sizes) and sizes[-1] < 768 * 12  # smallest first, all below the target
    assert config.finetune.dropout == config.budget("finetune", config.target).dropout == 0.1
    assert config.budget("pretrain", config.target).dropout == 0.0
    assert set(config.tasks) == set(paper.TASKS) and config.temperatures == (0.0, 1.0)
    for stage in ("pretrain", "finetune", "distill"):  # every unit fits a ~9-minute call
        for name in config.model_names:
            assert config.budget(stage, name).seconds <= 480
    assert config.vocab_size + config.extra_ids == 32100  # T5's 32000 pieces + 100 sentinels


def test_without_pretraining_fine_tuning_starts_from_random_init(tmp_path):
    """``pretrained=False`` (first_run.gin): no pretrain stage is needed or run."""
    first_run = _script().config_from_gin(["paper/first_run.gin"], [])
    assert not first_run.pretrained and first_run.tasks == ("translation_en_de",)
    work = tmp_path / "work"
    argv = ["--smoke", "--work", str(work), "--no_progress", "--stages", "vocab,finetune",
            "--gin_param", "paper.PaperConfig.pretrained=False"]  # fmt: skip
    assert _script().main(argv) == 0
    assert not (work / "pretrain").exists()
    records = [json.loads(p.read_text()) for p in (work / "finetune").glob("*/*/done.json")]
    assert records and all(r["init_checkpoint"] is None for r in records)
