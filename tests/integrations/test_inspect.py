"""passkcore's reducers and metric inside a real Inspect eval (tests/integrations/inspect_eval.py: the
offline mockllm/model provider with scripted outputs): per-sample values equal the exact ones, the log
imports back with the same counts, and ``passk estimate`` on that import equals what the eval reported."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("inspect_ai")

from inspect_ai.scorer import SampleScore, Score  # noqa: E402

from passkcore.cli import main  # noqa: E402
from passkcore.integrations.inspect import passk_maj_at, passk_pass_at, passk_pass_at_k  # noqa: E402
from passkcore.numbers.estimate import exact_pass_at_k  # noqa: E402

SCRIPT = Path(__file__).resolve().parent / "inspect_eval.py"
EPOCHS = 6
C = {"q0": 3, "q1": 1, "q2": 6, "q3": 0}  # correct epochs per sample (inspect_eval.OUTPUTS by hand)


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("inspect")
    done = subprocess.run([sys.executable, str(SCRIPT), str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return Path(done.stdout.strip().splitlines()[-1])


def reductions(path: Path) -> dict[str, dict[str, float]]:
    doc = json.loads(path.read_text())
    return {r["reducer"]: {s["sample_id"]: s["value"] for s in r["samples"]} for r in doc["reductions"]}


@pytest.mark.slow
def test_reducers_in_an_inspect_eval_equal_the_exact_values(log: Path) -> None:
    got = reductions(log)
    assert set(got) == {"passk_pass_at_1", "passk_pass_at_4", "passk_maj_at_3", "passk_g_pass_at_4"}
    for pid, c in C.items():  # the Fraction oracle
        assert got["passk_pass_at_1"][pid] == pytest.approx(c / EPOCHS, abs=1e-15)
        assert got["passk_pass_at_4"][pid] == pytest.approx(float(exact_pass_at_k(EPOCHS, c, 4)), abs=1e-15)
    # maj@3 of q0, answers 2 2 2 (correct) 3 3 4: of the 20 triples the correct class wins outright in
    # 1 (all three) + 3 * 3 (two of them) = 10 and ties 1-1-1 in 3 * 2 * 1 = 6 (1/3 each): 12 / 20
    assert got["passk_maj_at_3"]["q0"] == pytest.approx(12 / 20, abs=1e-15)
    assert (got["passk_maj_at_3"]["q2"], got["passk_maj_at_3"]["q3"]) == (1.0, 0.0)
    # G-pass@4_0.5 of q0: P(X >= 2), X ~ Hypergeometric(6, 3, 4) = (3 * 3 + 1 * 3) / 15
    assert got["passk_g_pass_at_4"]["q0"] == pytest.approx(12 / 15, abs=1e-15)


@pytest.mark.slow
def test_metric_reports_pass_at_k_with_both_intervals(log: Path) -> None:
    doc = json.loads(log.read_text())
    (score,) = [s for s in doc["results"]["scores"] if s["reducer"] == "passk_pass_at_4"]
    metrics = {m["name"]: m["value"] for m in score["metrics"].values()}
    expected = sum(float(exact_pass_at_k(EPOCHS, c, 4)) for c in C.values()) / len(C)
    assert metrics["pass@4"] == pytest.approx(expected, abs=1e-12)
    for target in ("benchmark", "population"):
        assert metrics[f"{target}_low"] <= metrics["pass@4"] <= metrics[f"{target}_high"]
    # problems like these (4 of them, one always right, one never) are far less certain than these problems
    assert metrics["population_high"] - metrics["population_low"] > metrics["benchmark_high"] - metrics["benchmark_low"]


@pytest.mark.slow
def test_log_imports_back_and_estimate_equals_the_reducers(log: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["import", "inspect", str(log), "--out", str(run)]) == 0
    assert "mockllm_model: 24 samples, 24 with verdicts, 10 correct" in capsys.readouterr().out
    means = {name: sum(v.values()) / len(v) for name, v in reductions(log).items()}
    assert main(["estimate", str(run), "--k", "1,3,4", "--json", "--metric", "pass@k,maj@k,g-pass@k", "--tau", "0.5"]) == 0
    est = json.loads(capsys.readouterr().out)["models"]["mockllm_model"]
    assert est["pass_at_k"][0] == pytest.approx(means["passk_pass_at_1"], abs=1e-15)
    assert est["pass_at_k"][2] == pytest.approx(means["passk_pass_at_4"], abs=1e-15)
    assert est["maj_at_k"][1] == pytest.approx(means["passk_maj_at_3"], abs=1e-15)
    assert est["g_pass_at_k"]["0.5"][2] == pytest.approx(means["passk_g_pass_at_4"], abs=1e-15)


def test_reducers_and_metric_alone() -> None:
    nan = float("nan")
    scores = [Score(value="C", answer="2"), Score(value="I", answer="3"), Score(value=nan), Score(value="P", answer="2")]
    reduced = passk_pass_at(2)(scores)  # n = 3 scored, c = 1 (P reads 0.5 < 1.0)
    assert reduced.value == pytest.approx(float(exact_pass_at_k(3, 1, 2)), abs=1e-15)
    assert reduced.metadata == {"passk": {"n": 3, "c": 1, "k": 2}}
    assert passk_pass_at(2, value=0.5)(scores).value == 1.0  # P counts at threshold 0.5
    assert math.isnan(passk_pass_at(4)(scores).value)  # k above the scored epochs: unscored, as Inspect's pass_at
    # maj@3 of C(2) I(3) I(3) I(no answer): only the draw {C, 3, abstain} (2 of 4) ties 1-1: 2 * 1/2 / 4
    assert passk_maj_at(3)([Score(value="C", answer="2"), Score(value="I", answer="3"), Score(value="I", answer="3"),
                            Score(value="I")]).value == pytest.approx(0.25, abs=1e-15)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        passk_pass_at(0)
    with pytest.raises(ValueError, match="one scalar value per epoch"):
        passk_pass_at(1)([Score(value={"a": 1})])
    plain = [SampleScore(score=Score(value=0.5), sample_id="a")]  # a reducer that kept no counts
    assert all(math.isnan(v) for v in passk_pass_at_k(1)(plain).values())
