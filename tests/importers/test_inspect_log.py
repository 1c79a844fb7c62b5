"""Inspect logs written by a real Inspect eval (tests/fixtures/inspect/make_fixture.py): counts by hand and
equal to what the log's own epoch reducer recorded; unfinished runs; bad logs."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from passkcore.importers import read
from passkcore.importers.inspect_log import read_inspect, value_to_float
from passkcore.importers.run import import_counts, import_run

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "inspect"
EVAL, JSON, UNFINISHED = FIXTURES / "arith.eval", FIXTURES / "arith.json", FIXTURES / "unfinished.eval"


def counts(table: pa.Table) -> dict[str, tuple[int, int]]:
    out: dict[str, list[int]] = {}
    for r in table.select(["problem_id", "correct"]).to_pylist():
        nc = out.setdefault(r["problem_id"], [0, 0])
        nc[0] += 1
        nc[1] += int(r["correct"])
    return {k: (v[0], v[1]) for k, v in out.items()}


def reductions(path: Path, scorer: str, reducer: str) -> dict[str, float]:
    """The per-sample values Inspect's own epoch reducer wrote into the log."""
    if path.suffix == ".eval":
        import zipfile_zstd  # noqa: F401

        with zipfile.ZipFile(path) as zf:
            entries = json.loads(zf.read("reductions.json"))
    else:
        entries = json.loads(path.read_text())["reductions"]
    (entry,) = [e for e in entries if e["scorer"] == scorer and e["reducer"] == reducer]
    return {str(s["sample_id"]): s["value"] for s in entry["samples"]}


@pytest.mark.parametrize("path", [EVAL, JSON], ids=["eval", "json"])
def test_both_formats_count_the_scored_epochs(path: Path) -> None:
    # By hand (make_fixture.py): match q1 3 of 5 ("2 it is" fails match, passes includes); q2's third
    # epoch errored (no score): 3 of 4; q3 0 of 5.
    match = read_inspect([path], scorer="match")
    assert counts(match) == {"q1": (5, 3), "q2": (4, 3), "q3": (5, 0)}
    assert counts(read_inspect([path], scorer="includes")) == {"q1": (5, 4), "q2": (4, 3), "q3": (5, 0)}
    for scorer in ("match", "includes"):  # Inspect's own mean reducer over the scored epochs: c / n
        mine = counts(read_inspect([path], scorer=scorer))
        assert {k: c / n for k, (n, c) in mine.items()} == reductions(path, scorer, "mean")
    assert set(match.column("model").to_pylist()) == {"mockllm_model"}  # the log's mockllm/model
    q2 = match.filter(pa.compute.equal(match.column("problem_id"), "q2"))
    assert sorted(q2.column("sample_index").to_pylist()) == [0, 1, 3, 4]  # epoch 3 unscored
    row = match.filter(pa.compute.equal(match.column("response"), "2 it is")).to_pylist()[0]
    assert (row["prompt"], row["answer"], row["correct"], row["finish_reason"]) == ("What is 1+1?", "2", False, "stop")
    assert row["source"].startswith(str(path))


def test_several_scorers_need_a_choice_and_labels_follow_model() -> None:
    with pytest.raises(ValueError, match=r"2 scorers \(match, includes\); choose one with --scorer"):
        read_inspect([EVAL])
    with pytest.raises(ValueError, match="no scorer 'exact'"):
        read_inspect([EVAL], scorer="exact")
    assert set(read("inspect", [EVAL], scorer="match", model="mine").column("model").to_pylist()) == {"mine"}


def test_unfinished_run() -> None:
    # Killed at the 8th model call: epochs 1-2 of every question and q1's third are in the zip, no header.json.
    with zipfile.ZipFile(UNFINISHED) as zf:
        assert "header.json" not in zf.namelist() and "_journal/start.json" in zf.namelist()
    assert counts(read_inspect([UNFINISHED], scorer="match")) == {"q1": (3, 2), "q2": (2, 1), "q3": (2, 0)}


def test_summaries_without_sample_members(tmp_path: Path) -> None:
    import zipfile_zstd  # noqa: F401

    slim = tmp_path / "slim.eval"
    with zipfile.ZipFile(EVAL) as src, zipfile.ZipFile(slim, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in ("header.json", "summaries.json"):
            dst.writestr(name, src.read(name))
    table = read_inspect([slim], scorer="includes")
    assert counts(table) == {"q1": (5, 4), "q2": (4, 3), "q3": (5, 0)}
    assert set(table.column("response").to_pylist()) == {""}  # summaries keep no output text


def test_value_to_float_as_inspect_reads_it() -> None:
    from inspect_ai.scorer import value_to_float as theirs

    for value in ("C", "I", "P", "N", True, False, 0, 1, 0.25, "yes", "no", "TRUE", "false", "0.75", 3):
        assert value_to_float(value, "x") == theirs()(value), value
    assert value_to_float(float("nan"), "x") is None and value_to_float(None, "x") is None
    with pytest.raises(ValueError, match=r"here: score value \{'a': 1\} is not a verdict"):
        value_to_float({"a": 1}, "here")
    with pytest.raises(ValueError, match="'maybe' is not a verdict"):
        value_to_float("maybe", "here")


def _log(tmp_path: Path, samples: list[dict[str, Any]], epochs: int = 2, name: str = "log.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"version": 2, "status": "success", "eval": {
        "model": "openai/gpt-x", "config": {"epochs": epochs}, "scorers": [{"name": "s"}]}, "samples": samples}))
    return path


def _sample(pid: str, epoch: int, value: Any, text: str = "Q?") -> dict[str, Any]:
    return {"id": pid, "epoch": epoch, "input": text, "target": "A", "output": {"completion": "x", "choices": []},
            "scores": {"s": {"value": value, "answer": "x"}}}


def test_threshold_and_partial_credit(tmp_path: Path) -> None:
    path = _log(tmp_path, [_sample("a", 1, "P"), _sample("a", 2, "C"), _sample("b", 1, 0.5), _sample("b", 2, "I")])
    assert counts(read_inspect([path])) == {"a": (2, 1), "b": (2, 0)}
    assert counts(read_inspect([path], threshold=0.5)) == {"a": (2, 2), "b": (2, 1)}


def test_bad_logs_name_the_file_and_sample(tmp_path: Path) -> None:
    truncated = tmp_path / "cut.eval"
    truncated.write_bytes(EVAL.read_bytes()[: EVAL.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"cut.eval: not a readable .eval log \(zip\).*truncated"):
        read_inspect([truncated], scorer="match")
    cut_json = tmp_path / "cut.json"
    cut_json.write_bytes(JSON.read_bytes()[: JSON.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"cut.json: truncated or invalid JSON after sample \d+"):
        read_inspect([cut_json], scorer="match")
    unscored = _log(tmp_path, [_sample("a", 1, float("nan")), {**_sample("a", 2, 1), "scores": {}}], name="none.json")
    with pytest.raises(ValueError, match=r"none.json: no scored samples for scorer 's'"):
        read_inspect([unscored])
    twice = _log(tmp_path, [_sample("a", 1, "C"), _sample("a", 1, "I")], name="twice.json")
    with pytest.raises(ValueError, match=r"twice.json: samples\[1\]: sample 'a' epoch 1 appears twice"):
        read_inspect([twice])
    beyond = _log(tmp_path, [_sample("a", 3, "C")], name="beyond.json")
    with pytest.raises(ValueError, match=r"beyond.json: samples\[0\]: epoch 3 of sample 'a' beyond the log's 2 epochs"):
        read_inspect([beyond])
    differ = _log(tmp_path, [_sample("a", 1, "C"), _sample("a", 2, "C", text="Other?")], name="differ.json")
    with pytest.raises(ValueError, match=r"differ.json: samples\[1\]: epochs of sample 'a' disagree"):
        read_inspect([differ])
    with pytest.raises(ValueError, match=r"EVAL|appears twice"):
        read_inspect([EVAL, EVAL], scorer="match")  # the same run twice under one label


def test_nothing_half_imported(tmp_path: Path) -> None:
    cut = tmp_path / "cut.json"
    cut.write_bytes(JSON.read_bytes()[: JSON.stat().st_size * 3 // 4])
    run = tmp_path / "run"
    with pytest.raises(ValueError, match="cut.json: truncated"):
        import_run("inspect", [cut], run, scorer="match")  # 8 scored samples read before the cut
    assert not run.exists()
    with pytest.raises(ValueError, match="cut.json: truncated"):
        import_counts("inspect", [cut], tmp_path / "c.csv", scorer="match")
    assert not (tmp_path / "c.csv").exists()


def test_counts_file_and_note(tmp_path: Path) -> None:
    copy = tmp_path / "other.eval"
    shutil.copy(EVAL, copy)
    table, note = import_counts("inspect", [EVAL], tmp_path / "c.csv", scorer="includes", threshold=1.0)
    assert sorted(zip(table.column("problem_id").to_pylist(), table.column("n").to_pylist(),
                      table.column("c").to_pylist())) == [("q1", 5, 4), ("q2", 4, 3), ("q3", 5, 0)]
    assert "scorer 'includes' value (Inspect's value_to_float) >= 1" in note
    assert "n = scored epochs" in (tmp_path / "c.csv.note.txt").read_text()


def test_cli_into_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from passkcore.cli import main
    from passkcore.pipeline.store import SampleStore

    run = tmp_path / "run"
    assert main(["import", "inspect", str(EVAL), "--scorer", "match", "--out", str(run)]) == 0
    assert "mockllm_model: 14 samples, 14 with verdicts, 6 correct" in capsys.readouterr().out
    store = SampleStore(run)
    assert "scorer 'match'" in store.manifest["models"]["mockllm_model"]["note"]
    assert main(["import", "inspect", str(EVAL), "--scorer", "match", "--out", str(run)]) == 0  # exactly once
    assert "mockllm_model: 14 samples" in capsys.readouterr().out
    assert main(["import", "rlvr", str(EVAL), "--scorer", "match", "--out", str(tmp_path / "x")]) == 2
    assert "--scorer chooses the score of an inspect log or an evalscope review file" in capsys.readouterr().err
