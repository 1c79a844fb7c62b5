"""``passk audit export`` and ``apply``: the queue as a file, its labels stored all or nothing, once."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from passkcore.audit import audit_queue, audited_counts, latest_labels, read_audits
from passkcore.cli import main
from passkcore.pipeline.store import SampleStore
from tests.audit.conftest import CORRECT, N


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _estimate(run: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict:
    assert main(["estimate", str(run), "--k", "1,8", "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_export_is_the_hardest_problems_correct_samples(run: SampleStore, tmp_path: Path) -> None:
    out = tmp_path / "audit.csv"
    assert main(["audit", "export", str(run.root), "--out", str(out), "--hardest", "2", "--per-problem", "2"]) == 0
    rows = _rows(out)
    assert list(rows[0]) == ["problem_id", "model", "sample_index", "prompt", "response", "answer", "n", "c",
                             "label", "note"]
    problems = {p.id: p for p in run.problems()}
    ids = list(problems)
    # a: c = 1, 3 on problems 0, 1 are its two hardest solved (problem 3 unsolved); b: c = 2 on 0, 4 on 3.
    chosen = {(r["model"], r["problem_id"]) for r in rows}
    assert chosen == {("a", ids[0]), ("a", ids[1]), ("b", ids[0]), ("b", ids[3])}
    assert [float(r["c"]) / float(r["n"]) for r in rows] == sorted(float(r["c"]) / float(r["n"]) for r in rows)
    for r in rows:
        assert int(r["sample_index"]) < int(r["c"])  # correct samples only (the first c of each problem)
        assert r["label"] == r["note"] == "" and r["answer"] == problems[r["problem_id"]].answer
        assert r["prompt"] == problems[r["problem_id"]].prompt and "<script>" in r["response"]
    per = {}
    for r in rows:
        per[(r["model"], r["problem_id"])] = per.get((r["model"], r["problem_id"]), 0) + 1
    assert per == {("a", ids[0]): 1, ("a", ids[1]): 2, ("b", ids[0]): 2, ("b", ids[3]): 2}
    # Seeded: the same seed draws the same samples, the file as JSONL holds the same rows.
    again = tmp_path / "audit.jsonl"
    assert main(["audit", "export", str(run.root), "--out", str(again), "--hardest", "2", "--per-problem", "2"]) == 0
    lines = [json.loads(x) for x in again.read_text().splitlines()]
    assert [(x["model"], x["problem_id"], x["sample_index"]) for x in lines] == \
        [(r["model"], r["problem_id"], int(r["sample_index"])) for r in rows]
    other = audit_queue(run, hardest=2, per_problem=2, seed=1)
    assert {i.key for i in other} != {(r["model"], r["problem_id"], int(r["sample_index"])) for r in rows}
    one = audit_queue(run, hardest=2, per_problem=2, models=["b"])
    assert [i for i in audit_queue(run, hardest=2, per_problem=2) if i.model == "b"] == one


def test_apply_labels_change_audited_estimate(run: SampleStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = _estimate(run.root, capsys)
    assert _estimate(run.root, capsys, "--audited")["models"] == raw["models"]  # no labels: the same numbers
    out = tmp_path / "audit.csv"
    assert main(["audit", "export", str(run.root), "--out", str(out), "--hardest", "1", "--per-problem", "2"]) == 0
    rows = _rows(out)
    a_row = next(r for r in rows if r["model"] == "a")
    b_rows = [r for r in rows if r["model"] == "b"]
    assert len(b_rows) == 2
    a_row["label"], a_row["note"] = "Guess", "answer right, algebra wrong"
    b_rows[0]["label"] = "valid"
    b_rows[1]["label"] = " guess "
    _write(out, rows)
    assert main(["audit", "apply", str(run.root), str(out)]) == 0
    assert "3 labelled rows" in capsys.readouterr().out
    audited = _estimate(run.root, capsys, "--audited")
    # Problem 0: a had c = 1 (now 0), b had c = 2 (now 1); pass@1 drops by 1/N / 4 problems each.
    for model in ("a", "b"):
        assert audited["models"][model]["pass_at_k"][0] == pytest.approx(raw["models"][model]["pass_at_k"][0] - 1 / N / 4)
    assert audited["models"]["a"]["pass_at_k"][1] == pytest.approx(raw["models"]["a"]["pass_at_k"][1] - 1 / 4)
    assert audited["audited"]["auditor"] is None
    table = audited_counts(run.root)
    first = run.problems()[0].id
    got = {(m, p): c for p, m, c in zip(*(table.column(x).to_pylist() for x in ("problem_id", "model", "c")))}
    assert got[("a", first)] == CORRECT["a"][0] - 1 and got[("b", first)] == CORRECT["b"][0] - 1
    # The report shows the same: its audited curve is estimate --audited's, beside the raw one.
    assert main(["report", str(run.root), "--out", str(tmp_path / "report"), "--bootstrap", "20",
                 "--forecast-resamples", "5"]) == 0
    capsys.readouterr()
    rows = {r["model"]: r for r in json.loads((tmp_path / "report" / "report.json").read_text())["audit"]["rows"]}
    for model in ("a", "b"):
        assert (rows[model]["audited"], rows[model]["guess"]) == ((1, 1) if model == "a" else (2, 1))
        curve = rows[model]["curve"]
        assert [curve["k"][0], curve["k"][-1]] == [1, 8]
        assert [curve["audited"][0], curve["audited"][-1]] == pytest.approx(audited["models"][model]["pass_at_k"])
        assert [curve["raw"][0], curve["raw"][-1]] == pytest.approx(raw["models"][model]["pass_at_k"])
    # Applied again: nothing new. Another auditor's labels count only when asked for.
    assert main(["audit", "apply", str(run.root), str(out)]) == 0
    assert "0 stored" in capsys.readouterr().out
    assert read_audits(run).num_rows == 3
    assert _estimate(run.root, capsys, "--audited", "--auditor", "nobody")["models"] == raw["models"]
    assert _estimate(run.root, capsys, "--audited", "--auditor", "human")["models"] == audited["models"]


def test_newer_label_supersedes_and_history_is_kept(run: SampleStore, tmp_path: Path) -> None:
    out = tmp_path / "audit.jsonl"
    assert main(["audit", "export", str(run.root), "--out", str(out), "--hardest", "1", "--per-problem", "1",
                 "--model", "b"]) == 0
    row = json.loads(out.read_text())
    for label in ("guess", "valid", "guess"):
        out.write_text(json.dumps({**row, "label": label}) + "\n")
        assert main(["audit", "apply", str(run.root), str(out), "--auditor", "ann"]) == 0
    history = read_audits(run)
    assert history.column("label").to_pylist() == ["guess", "valid", "guess"]
    assert set(history.column("auditor").to_pylist()) == {"ann"}
    key = (row["model"], row["problem_id"], row["sample_index"])
    assert latest_labels(history)[key]["label"] == "guess"
    out.write_text(json.dumps({**row, "label": "valid", "note": "checked twice"}) + "\n")
    assert main(["audit", "apply", str(run.root), str(out), "--auditor", "bob"]) == 0
    assert latest_labels(read_audits(run))[key]["auditor"] == "bob"  # the latest person's label
    assert latest_labels(read_audits(run), "ann")[key]["label"] == "guess"


@pytest.mark.parametrize("change, message", [
    ({"label": "maybe"}, "label 'maybe' is not one of valid, guess, unsure"),
    ({"problem_id": "nope"}, "unknown sample (model 'a', problem_id 'nope'"),
    ({"sample_index": "7"}, "is incorrect; only correct samples are audited"),
    ({"sample_index": "x"}, "sample_index 'x' is not an integer"),
])
def test_a_bad_file_stores_nothing(run: SampleStore, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   change: dict[str, str], message: str) -> None:
    out = tmp_path / "audit.csv"
    assert main(["audit", "export", str(run.root), "--out", str(out), "--hardest", "1", "--per-problem", "3"]) == 0
    rows = _rows(out)
    for r in rows:
        r["label"] = "valid"
    bad = next(i for i, r in enumerate(rows) if r["model"] == "a")
    rows[bad].update(change)
    _write(out, rows)
    capsys.readouterr()
    assert main(["audit", "apply", str(run.root), str(out)]) == 2
    err = capsys.readouterr().err
    # Responses hold no newline here: row i of the file is on line i + 2.
    assert f"{out}:{bad + 2}: " in err and message in err, err
    assert read_audits(run).num_rows == 0 and not (run.root / "audits").exists()


def test_apply_line_numbers_count_multiline_responses(run: SampleStore, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "audit.csv"
    assert main(["audit", "export", str(run.root), "--out", str(out), "--hardest", "1", "--per-problem", "2"]) == 0
    rows = _rows(out)
    rows[0]["response"] = "line one\nline two\nline three"
    rows[1]["label"] = "wrong"
    _write(out, rows)
    assert main(["audit", "apply", str(run.root), str(out)]) == 2
    assert f"{out}:5: label 'wrong'" in capsys.readouterr().err  # header, 3 lines of row 0, then row 1


def test_a_sample_labelled_twice_names_both_lines(run: SampleStore, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "audit.jsonl"
    assert main(["audit", "export", str(run.root), "--out", str(out), "--hardest", "1", "--per-problem", "1"]) == 0
    row = json.loads(out.read_text().splitlines()[0])
    out.write_text(json.dumps({**row, "label": "valid"}) + "\n" + json.dumps({**row, "label": "guess"}) + "\n")
    assert main(["audit", "apply", str(run.root), str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out}:2: sample" in err and f"labelled again (first at {out}:1)" in err, err
    assert read_audits(run).num_rows == 0


def test_estimate_audited_needs_a_run(capsys: pytest.CaptureFixture[str], math500_path: Path) -> None:
    assert main(["estimate", str(math500_path), "--audited"]) == 2
    assert "--audited needs a run directory" in capsys.readouterr().err


def test_a_spreadsheet_csv_with_a_byte_order_mark(run: SampleStore, tmp_path: Path) -> None:
    out = tmp_path / "audit.csv"
    assert main(["audit", "export", str(run.root), "--out", str(out), "--hardest", "1", "--per-problem", "1"]) == 0
    rows = _rows(out)
    rows[0]["label"] = "guess"
    _write(out, rows)
    out.write_bytes(b"\xef\xbb\xbf" + out.read_bytes())
    assert main(["audit", "apply", str(run.root), str(out)]) == 0
    assert read_audits(run).column("label").to_pylist() == ["guess"]
