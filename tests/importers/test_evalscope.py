"""EvalScope review files written by EvalScope's own CacheManager (tests/fixtures/evalscope/make_fixture.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from passkcore.importers.evalscope import read_evalscope
from tests.importers.conftest import nc

REVIEWS = Path(__file__).resolve().parent.parent / "fixtures" / "evalscope" / "reviews" / "passk-mock" / "arith_default.jsonl"


def test_counts_by_hand_and_failed_judges_drop_out() -> None:
    table = read_evalscope([REVIEWS])
    # make_fixture.PREDICTIONS: 3 of 4, 2 of 4; question 2's fourth (its one right answer) has a failed judge
    assert nc(table) == {"arith_default/0": (4, 3), "arith_default/1": (4, 2), "arith_default/2": (3, 0)}
    lines = [json.loads(x) for x in REVIEWS.read_text().splitlines()]
    usable = [x for x in lines if x["sample_score"]["score"]["status"] == "success"]
    assert table.num_rows == len(usable) == 11
    assert sum(table.column("correct").to_pylist()) == sum(x["sample_score"]["score"]["value"]["acc"] for x in usable)
    assert set(table.column("model").to_pylist()) == {"passk-mock"}  # the reviews folder
    first = table.to_pylist()[0]
    assert (first["prompt"], first["response"], first["answer"], first["sample_index"]) == ("What is 1+1?", "2", "2", 0)


def test_metric_choice_and_bad_lines(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"arith_default.jsonl:1: no metric 'f1' in the score \(metrics: acc\)"):
        read_evalscope([REVIEWS], scorer="f1")
    with pytest.raises(ValueError, match=r"arith_default.jsonl:1: question 'arith_default/0' generation 0 appears twice"):
        read_evalscope([REVIEWS, REVIEWS])
    lines = REVIEWS.read_text().splitlines()
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(lines[:2]) + "\n" + lines[2][:100] + "\n")
    with pytest.raises(ValueError, match=r"cut.jsonl:3: not valid JSON"):
        read_evalscope([cut])
    no_repeat = tmp_path / "r.jsonl"
    line = json.loads(lines[0])
    line["sample_score"]["group_id"] = None
    no_repeat.write_text(json.dumps(line) + "\n")
    with pytest.raises(ValueError, match=r"r.jsonl:1: sample_score needs group_id and generation_index"):
        read_evalscope([no_repeat])
