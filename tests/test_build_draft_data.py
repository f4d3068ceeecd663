"""scripts/build_draft_data.py --smoke end to end (tiny random Llama, character tokenizer), the
shards' resumption, and reading them back for distillation. Skips without apt's lists."""

from __future__ import annotations

import importlib.util
import json
import pathlib

import pytest

from spec_decode.distill import by_category, draft_data
from spec_decode.distill.char_tokenizer import CharTokenizer
from spec_decode.distill.requests import Request

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    if not list(pathlib.Path("/var/lib/apt/lists").glob("*_i18n_Translation-de*")):
        pytest.skip("no apt Translation lists on this machine")
    out = tmp_path_factory.mktemp("draft_data")
    script = _script("build_draft_data")
    assert script.main(["--smoke", "--out", str(out), "--no-progress"]) == 0
    return script, out


def test_smoke_writes_shards_examples_and_a_manifest_that_counts_them(smoke):
    _, out = smoke
    manifest = draft_data.read_manifest(out)
    examples = list(draft_data.read_examples(out, split=None))
    assert manifest["examples"] == len(examples) > 0
    assert manifest["target_tokens"] == sum(len(e["response_ids"]) for e in examples) > 0
    by_split = manifest["target_tokens_by_split"]
    assert set(by_split) == {"train", "held_out"} and sum(by_split.values()) == sum(
        len(e["response_ids"]) for e in examples
    )
    assert len(manifest["shards"]) == len(list(out.glob("shard-*.jsonl"))) > 1
    tokenizer = CharTokenizer()
    temperatures: dict[int, set] = {}
    for e in examples:
        assert e["prompt_ids"] == tokenizer.chat([{"role": "user", "content": e["text"]}])
        assert 0 < len(e["response_ids"]) <= manifest["config"]["new_tokens"]
        assert e["response"] == tokenizer.decode(
            [t for t in e["response_ids"] if t != tokenizer.eos_id], skip_special_tokens=True
        )
        temperatures.setdefault(e["index"], set()).add(e["temperature"])
    assert all(t == {0.0, 1.0} for t in temperatures.values())
    requests = json.loads((out / "requests.json").read_text())
    assert requests["requests"] == manifest["requests"]["requests"]
    assert set(requests["held_out_prompts"]) <= {c for c, n in requests["requests"].items()
                                                 if n["held_out"]}  # fmt: skip


def test_a_rerun_resumes_without_regenerating(smoke, monkeypatch):
    script, out = smoke
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.glob("shard-*")}

    def refuse(*args, **kwargs):
        raise AssertionError("a finished shard was generated again")

    monkeypatch.setattr(script, "respond", refuse)
    assert script.main(["--smoke", "--out", str(out), "--no-progress"]) == 0
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.glob("shard-*")}
    assert after == before
    assert draft_data.read_manifest(out)["shards_generated_last_run"] == 0


def _requests(n: int) -> list[Request]:
    return [Request(f"request {i}", "facts", "five_facts", f"topic:{i}", str(i), "train")
            for i in range(n)]  # fmt: skip


def _fake_generate(calls: list):
    def generate(part, first):
        calls.append(first)
        return [{**r.to_json(), "index": first + i, "temperature": 0.0, "prompt_ids": [2, 3],
                 "response_ids": [5] * (first + i + 1), "response": "", "finished": False}
                for i, r in enumerate(part)], 0  # fmt: skip

    return generate


def test_only_missing_or_changed_shards_are_generated(tmp_path):
    calls: list[int] = []
    requests = _requests(10)
    first = draft_data.write_shards(tmp_path, requests, _fake_generate(calls), {"a": 1}, 4,
                                    progress=False)  # fmt: skip
    assert calls == [0, 4, 8] and first["target_tokens"] == sum(range(1, 11))
    (tmp_path / draft_data.shard_name(1)).unlink()  # a crash lost shard 1
    calls.clear()
    draft_data.write_shards(tmp_path, requests, _fake_generate(calls), {"a": 1}, 4,
                            progress=False)  # fmt: skip
    assert calls == [4]
    calls.clear()
    changed = requests[:8] + _requests(12)[10:]  # the last shard's requests changed
    draft_data.write_shards(tmp_path, changed, _fake_generate(calls), {"a": 1}, 4,
                            progress=False)  # fmt: skip
    assert calls == [8]
    calls.clear()
    draft_data.write_shards(tmp_path, requests, _fake_generate(calls), {"a": 2}, 4,
                            progress=False)  # fmt: skip
    assert calls == [0, 4, 8]  # a changed generation config regenerates everything


def test_distillation_reads_only_the_training_split(smoke):
    _, out = smoke
    data = draft_data.training_set(out)
    train = list(draft_data.read_examples(out, "train"))
    assert len(data.training_set.sequences) == len(train) == len(data.categories)
    assert data.training_set.lengths.tolist() == [
        len(e["prompt_ids"]) + len(e["response_ids"]) for e in train
    ]
    held = {e["text"] for e in draft_data.read_examples(out, "held_out")}
    assert held and not held & {e["text"] for e in train}
    assert sum(data.training_set.prompt_counts.values()) == len(train)
    with pytest.raises(ValueError, match="width=4"):
        draft_data.training_set(out, width=4)


def test_distill_draft_takes_shards_but_not_with_data(tmp_path):
    script = _script("distill_draft")
    assert script.parse_args(["--shards", str(tmp_path)]).shards == str(tmp_path)
    assert script.parse_args([]).shards is None  # the default run is unchanged
    with pytest.raises(SystemExit):
        script.parse_args(["--shards", str(tmp_path), "--data", str(tmp_path / "x.npz")])
    with pytest.raises(ValueError, match="build_draft_data.py"):
        draft_data.training_set(tmp_path)


def test_a_saved_request_set_answered_elsewhere_gives_the_same_shards(smoke, tmp_path):
    # the GPU host has no apt lists: it answers the request set the CPU machine saved
    script, out = smoke
    saved = out / script.SAVED
    assert saved.is_file()
    again = tmp_path / "elsewhere"
    assert script.main(["--smoke", "--out", str(again), "--requests", str(saved),
                        "--no-progress"]) == 0  # fmt: skip
    examples = list(draft_data.read_examples(out, split=None))
    assert list(draft_data.read_examples(again, split=None)) == examples
    manifest = draft_data.read_manifest(again)
    assert manifest["requests"]["requests"] == draft_data.read_manifest(out)["requests"]["requests"]


def test_a_saved_request_set_with_a_moved_request_is_refused(smoke, tmp_path):
    import gzip

    script, out = smoke
    with gzip.open(out / script.SAVED, "rt") as f:
        saved = json.load(f)
    saved["requests"]["train"].append(saved["requests"]["held_out"][0])  # leaks a held-out one
    bad = tmp_path / script.SAVED
    with gzip.open(bad, "wt") as f:
        json.dump(saved, f)
    with pytest.raises(ValueError, match="in 'train' but say otherwise"):
        script.main(["--smoke", "--out", str(tmp_path / "o"), "--requests", str(bad)])
    with pytest.raises(SystemExit, match="--requests .* no such file"):
        script.main(["--smoke", "--out", str(tmp_path / "o"), "--requests", str(tmp_path / "x")])


def test_alpha_table_words_the_same_held_out_prompts_from_the_saved_set_as_the_shards(smoke):
    # scripts/alpha_table.py --requests (a CPU machine) evaluates on the prompts the GPU's
    # shards hold: same ids, same categories, same order, the same too-wide ones left out
    script, out = smoke
    table = _script("alpha_table")
    width = int(script.parse_args(["--smoke", "--out", "x"]).widths.split(",")[-1])
    for per_category in (1, 3):
        worded = table.requested_prompts(out / script.SAVED, CharTokenizer(), per_category, width)
        read = by_category.held_out_prompts(out, per_category)
        assert worded == read and len(read.ids) > 0


@pytest.mark.parametrize("argv, message", [
    (["--drafts", "trigram"], "--drafts 'trigram' is not allowed"),
    (["--draft-dir", "bigram=x"], "--draft-dir 'bigram=x' is not allowed"),
    (["--draft-dir", "smollm2-eagle=x"], "also in --drafts"),  # not a draft it evaluates
    (["--per-category", "0"], "--per-category 0 is not allowed"),
    (["--temperatures", "0,-1"], "--temperatures '0,-1' is not allowed"),
])  # fmt: skip
def test_alpha_table_refuses_bad_arguments_by_name(argv, message, capsys):
    with pytest.raises(SystemExit):
        _script("alpha_table").parse_args(["--requests", "r.json.gz", "--out", "o", *argv])
    assert message in capsys.readouterr().err


def test_alpha_table_markdown_puts_each_headline_alpha_in_its_column():
    def report(*alphas):
        names = ("held_out T=0", "held_out T=1", "demo T=0", "demo T=1")
        return {n: {"all": {"alpha": a}} for n, a in zip(names, alphas, strict=True)}

    text = _script("alpha_table").markdown(
        {"bigram": report(0.19, 0.147, 0.16, None), "prompt-lookup": report(0.5, 0.1, 0.2, 0.3)},
        (0.0, 1.0),
    )
    lines = text.splitlines()
    assert lines[0] == "| draft | held_out T=0 | held_out T=1 | demo T=0 | demo T=1 |"
    assert lines[2] == "| bigram | 0.190 | 0.147 | 0.160 | - |"  # None: nothing examined
    assert lines[3] == "| prompt-lookup | 0.500 | 0.100 | 0.200 | 0.300 |"
