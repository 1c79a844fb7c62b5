"""verl validation dumps written by verl's own ``_write_generations`` (tests/fixtures/verl/make_fixture.py):
counts by hand, a label per step, and the report's checkpoint series with no flag."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from passkcore.cli import main
from passkcore.importers.run import import_counts, import_run
from passkcore.importers.verl import problem_id, read_verl
from tests.importers.conftest import nc as count_nc

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "verl"
DUMPS = [FIXTURES / f"{s}.jsonl" for s in (0, 10, 20)]


def maker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_verl_fixture", FIXTURES / "make_fixture.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nc(table: object) -> dict[tuple[str, str], tuple[int, int]]:
    return count_nc(table, ("model", "problem_id"))


def expected(prefix: str = "verl") -> dict[tuple[str, str], tuple[int, int]]:
    m = maker()
    return {(f"{prefix}-step{step}", problem_id(p)): (4, c) for step, cs in m.CORRECT.items() for p, c in zip(m.PROMPTS, cs)}


def test_dumps_written_now_by_verl_itself(tmp_path: Path) -> None:
    if importlib.util.find_spec("verl") is None:  # found, not imported (its import takes seconds)
        pytest.skip("verl is not installed")
    m = maker()
    m.main(tmp_path)  # verl's _write_generations, from its installed source
    assert [p.read_text() for p in sorted(tmp_path.glob("*.jsonl"))] == [p.read_text() for p in sorted(DUMPS)]
    assert nc(read_verl(sorted(tmp_path.glob("*.jsonl")))) == expected()


def test_counts_labels_and_verdicts() -> None:
    table = read_verl(DUMPS)
    assert nc(table) == expected()
    assert set(table.column("verifier").to_pylist()) == {"verl-acc", "verl-score>=1"}  # step 20 has no acc
    assert nc(read_verl(DUMPS, model="grpo")) == expected("grpo")
    first = table.to_pylist()[0]
    assert (first["prompt"], first["answer"], first["extracted_answer"]) == (maker().PROMPTS[0], "2", "2")
    # score >= threshold where there is no acc: 0.5 leaves step 20's 0/1 scores as they are
    assert nc(read_verl(DUMPS[2:], threshold=0.5)) == {k: v for k, v in expected().items() if k[0] == "verl-step20"}


def test_acc_wins_over_score(tmp_path: Path) -> None:
    path = tmp_path / "5.jsonl"
    lines = [{"input": "q", "output": "a", "gts": "1", "score": 0.9, "step": 5, "acc": True},
             {"input": "q", "output": "b", "gts": "1", "score": 0.9, "step": 5}]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert nc(read_verl([path])) == {("verl-step5", problem_id("q")): (2, 1)}
    assert nc(read_verl([path], threshold=0.9)) == {("verl-step5", problem_id("q")): (2, 2)}


def test_bad_dumps(tmp_path: Path) -> None:
    no_input = tmp_path / "1.jsonl"
    no_input.write_text(json.dumps({"output": "a", "score": 1.0, "step": 1}) + "\n")
    with pytest.raises(ValueError, match=r"1.jsonl:1: missing field 'input' \(not a verl generations dump\?\)"):
        read_verl([no_input])
    cut = tmp_path / "2.jsonl"
    cut.write_text(DUMPS[0].read_text()[:300])
    with pytest.raises(ValueError, match=r"2.jsonl:2: not valid JSON"):
        read_verl([cut])
    with pytest.raises(ValueError, match=r"step 0 is also in .*0.jsonl"):
        read_verl([DUMPS[0], DUMPS[0]])
    mixed = tmp_path / "3.jsonl"
    mixed.write_text("".join(json.dumps({"input": "q", "output": "a", "score": 1.0, "step": s}) + "\n" for s in (3, 4)))
    with pytest.raises(ValueError, match=r"3.jsonl:2: step 4 in a file of verl-step3"):
        read_verl([mixed])
    bad_acc = tmp_path / "6.jsonl"
    bad_acc.write_text(json.dumps({"input": "q", "output": "a", "score": 1.0, "step": 6, "acc": 0.5}) + "\n")
    with pytest.raises(ValueError, match=r"6.jsonl:1: field 'acc' must be a verdict"):
        read_verl([bad_acc])
    run = tmp_path / "run"
    with pytest.raises(ValueError, match="2.jsonl:2: not valid JSON"):
        import_run("verl", [*DUMPS[1:], cut], run)
    assert not run.exists()  # nothing half-imported


def test_two_steps_make_a_series_in_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from passkcore.report.build import build_data

    counts = tmp_path / "verl.csv"
    assert main(["import", "verl", *map(str, DUMPS), "--out", str(counts)]) == 0
    out = capsys.readouterr().out
    assert "9 (problem, model) counts" in out and "else score >= 1" in out
    data = build_data(counts, resamples=50, forecast_resamples=2)
    (series,) = data["series"]
    assert series["labels"] == ["verl-step10", "verl-step20"] and series["steps"] == [10, 20]
    assert data["benchmarks"][0]["base"] == "verl-step0"
    # pass@1 per step from the dumps by hand: (3+2+0)/12 and (4+2+0)/12
    assert series["values"][0]["k"] == 1
    assert series["values"][0]["pass_at_k"] == pytest.approx([5 / 12, 6 / 12], abs=1e-15)


def test_run_import_note(tmp_path: Path) -> None:
    from passkcore.report.build import build_data

    store = import_run("verl", DUMPS, tmp_path / "run")
    assert sorted(m for m in store.manifest["models"]) == ["verl-step0", "verl-step10", "verl-step20"]
    (series,) = build_data(tmp_path / "run", resamples=50, forecast_resamples=2)["series"]  # from the run too
    assert series["labels"] == ["verl-step10", "verl-step20"]
    assert "else score >= 1" in store.manifest["models"]["verl-step20"]["note"]
    table, note = import_counts("verl", DUMPS, tmp_path / "c.parquet", threshold=0.5)
    assert note.endswith("else score >= 0.5") and table.num_rows == 9
