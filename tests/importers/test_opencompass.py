"""OpenCompass results + predictions written by OpenCompass's own evaluator and output handler
(tests/fixtures/opencompass/make_fixture.py): counts equal to the log's details, the copy layout, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from passkcore.importers.opencompass import read_opencompass
from passkcore.importers.run import import_counts
from tests.importers.conftest import nc

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "opencompass"
RESULTS = FIXTURES / "results" / "passk-mock" / "arith.json"
PREDICTIONS = FIXTURES / "predictions" / "passk-mock" / "arith.json"


def test_counts_equal_the_details_and_texts_follow_the_copy_layout() -> None:
    table = read_opencompass([PREDICTIONS, RESULTS])  # any order: told apart by content
    assert nc(table) == {"0": (4, 3), "1": (4, 1), "2": (4, 0)}  # make_fixture.PREDICTIONS by hand
    details = json.loads(RESULTS.read_text())["details"]
    assert {d["example_abbr"].split("_")[-1]: (len(d["correct"]), sum(d["correct"])) for d in details} == nc(table)
    assert set(table.column("model").to_pylist()) == {"passk-mock"}
    rows = {(r["problem_id"], r["sample_index"]): r for r in table.to_pylist()}
    # copy r of problem j is predictions entry r * 3 + j: problem 1's copies predicted 5, 4, 5, 5
    assert [rows["1", r]["response"] for r in range(4)] == ["5", "4", "5", "5"]
    assert [rows["1", r]["correct"] for r in range(4)] == [False, True, False, False]
    assert rows["1", 0]["prompt"] == "Question: What is 2+2?\nAnswer:" and rows["1", 0]["answer"] == "4"


def test_results_alone_give_counts() -> None:
    table = read_opencompass([RESULTS], model="oc")
    assert nc(table) == {"0": (4, 3), "1": (4, 1), "2": (4, 0)}
    assert set(table.column("response").to_pylist()) == {""} and set(table.column("model").to_pylist()) == {"oc"}


def test_split_predictions_files(tmp_path: Path) -> None:
    whole = json.loads(PREDICTIONS.read_text())
    parts = [dict(list(whole.items())[:5]), dict(list(whole.items())[5:])]
    paths = []
    for i, part in enumerate(parts):  # each part keyed from "0", as OpenCompass's partial files are
        paths.append(tmp_path / f"arith_{i}.json")
        paths[-1].write_text(json.dumps({str(j): v for j, v in enumerate(part.values())}))
    got = {(r["problem_id"], r["sample_index"]): r["response"] for r in read_opencompass([RESULTS, *reversed(paths)]).to_pylist()}
    want = {(r["problem_id"], r["sample_index"]): r["response"] for r in read_opencompass([RESULTS, PREDICTIONS]).to_pylist()}
    assert got == want


def test_bad_files(tmp_path: Path) -> None:
    cut = tmp_path / "arith.json"
    cut.write_text(RESULTS.read_text()[:-200])
    with pytest.raises(ValueError, match=r"arith.json: truncated or invalid JSON after detail 2"):
        read_opencompass([cut])
    doc = json.loads(RESULTS.read_text())
    doc["details"][1]["correct"] = doc["details"][1]["correct"][:3]
    short = tmp_path / "short" / "arith.json"
    short.parent.mkdir()
    short.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"details\[1\] \(problem '1'\) has 3 replicas, details\[0\] 4"):
        read_opencompass([short])
    fewer = tmp_path / "p" / "arith.json"
    fewer.parent.mkdir()
    fewer.write_text(json.dumps(dict(list(json.loads(PREDICTIONS.read_text()).items())[:11])))
    with pytest.raises(ValueError, match=r"11 predictions for 3 problems x 4 replicas"):
        read_opencompass([RESULTS, fewer])
    other = tmp_path / "other.json"
    other.write_text(PREDICTIONS.read_text())
    with pytest.raises(ValueError, match="dataset 'other', whose results file is not given"):
        read_opencompass([RESULTS, other])
    out = tmp_path / "c.csv"
    with pytest.raises(ValueError, match="11 predictions"):
        import_counts("opencompass", [RESULTS, fewer], out)
    assert not out.exists()  # nothing half-written


def test_pass_at_k_equals_opencompass_own_g_pass_at_k_tau_0() -> None:
    from passkcore.numbers.estimate import pass_at_k

    counts = nc(read_opencompass([RESULTS]))
    n, c = [v[0] for v in counts.values()], [v[1] for v in counts.values()]
    doc = json.loads(RESULTS.read_text())  # OpenCompass's G-Pass@k_0.0 is pass@k, in percent
    for k in (1, 2):
        assert float(pass_at_k(n, c, k).mean()) == pytest.approx(doc[f"G-Pass@{k}_0.0"] / 100, abs=1e-12)
