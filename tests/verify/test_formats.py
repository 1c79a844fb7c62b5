"""The three code test formats on small problems: floats, mutation, large outputs, reading past EOF."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

import passkcore.verify.judge as judge_module
from passkcore.cli import main
from passkcore.pipeline.store import SampleStore
from passkcore.problems import Problem, load_jsonl
from passkcore.verify import verify_rows
from passkcore.verify.judge import Judge


@pytest.fixture(scope="module")
def judge() -> Iterator[Judge]:
    with Judge(timeout_s=5, memory_mb=512) as j:
        yield j


def io(inputs: list, outputs: list, atol: float | None = None, entry: str = "f") -> Problem:
    return Problem("io", "def f(x):\n", "code_io", entry_point=entry, inputs=inputs, outputs=outputs, atol=atol)


def stdio(inputs: list[str], outputs: list[str], atol: float | None = None) -> Problem:
    return Problem("std", "", "code_stdio", inputs=inputs, outputs=outputs, atol=atol)


def test_check_format_sees_mutation(judge: Judge) -> None:
    tests = "def check(candidate):\n    xs = [3, 1, 2]\n    assert candidate(xs) is None\n    assert xs == [1, 2, 3]\n"
    problem = Problem("m", "def sort_in_place(xs):\n", "code", tests=tests, entry_point="sort_in_place")
    assert judge.judge(problem, "def sort_in_place(xs):\n    xs.sort()\n").passed
    v = judge.judge(problem, "def sort_in_place(xs):\n    xs = sorted(xs)\n")
    assert v.reason == "wrong_answer" and "line 4" in (v.first_failure or "")


def test_check_format_expected_raise_and_plain_types(judge: Judge) -> None:
    tests = ("def check(candidate):\n    try:\n        candidate(-1)\n        assert False\n    except ValueError:\n"
             "        assert False, 'not the candidate exception type'\n    except Exception:\n        pass\n"
             "    assert candidate(2) == (2, {1.5: b'x'}, frozenset({None}), 1 + 2j)\n")
    problem = Problem("r", "def f(x):\n", "code", tests=tests, entry_point="f")
    program = ("def f(x):\n    if x < 0:\n        raise ValueError('neg')\n"
               "    return (x, {1.5: b'x'}, frozenset({None}), 1 + 2j)\n")
    assert judge.judge(problem, program).passed


def test_function_io_floats_and_counts(judge: Judge) -> None:
    problem = io([[1.0], [2.0], [3.0]], [0.1, 0.2, 0.30000001])
    ok = judge.judge(problem, "def f(x):\n    return x / 10\n")
    assert ok.passed and (ok.tests_passed, ok.tests_total) == (3, 3)  # rel_tol 1e-6
    loose = io([[1.0]], [0.11], atol=0.02)
    assert judge.judge(loose, "def f(x):\n    return x / 10\n").passed
    assert not judge.judge(io([[1.0]], [0.11]), "def f(x):\n    return x / 10\n").passed
    partial = judge.judge(problem, "def f(x):\n    return 0.2 if x == 2 else 0.0\n")
    assert (partial.passed, partial.tests_passed, partial.reason) == (False, 1, "wrong_answer")
    assert partial.first_failure == "test 1: wrong_answer: expected 0.1, got 0.0"
    crash = judge.judge(problem, "def f(x):\n    if x == 2:\n        raise KeyError(x)\n    return x / 10\n")
    assert crash.tests_passed == 2 and crash.first_failure == "test 2: crash: KeyError: 2.0"
    assert not judge.judge(io([[1]], [True]), "def f(x):\n    return 1\n").passed  # bools are not numbers
    assert judge.judge(io([[1]], [[1, 2]]), "def f(x):\n    return (1, 2)\n").passed  # JSON has no tuples


def test_answer_keys_group_equal_outputs(judge: Judge) -> None:
    problem = io([[1], [2]], [1, 4])
    a = judge.judge(problem, "def f(x):\n    return {x, x * 2, 'a'}\n")
    b = judge.judge(problem, "def f(x):\n    s = set()\n    s.add('a'); s.add(x * 2); s.add(x)\n    return s\n")
    c = judge.judge(problem, "def f(x):\n    return {x}\n")
    assert a.answer_key == b.answer_key != c.answer_key and a.answer_key


def test_function_io_large_output_and_timeout(judge: Judge) -> None:
    big = judge.judge(io([[1]], [1]), "def f(x):\n    return 'x' * (40 * 2 ** 20)\n")
    assert not big.passed and "unserialisable" in (big.first_failure or ""), big
    slow = Judge(timeout_s=1, memory_mb=512)
    try:
        v = slow.judge(io([[1], [2]], [1, 2]), "def f(x):\n    while x == 2:\n        pass\n    return x\n")
        assert (v.reason, v.tests_passed, v.first_failure) == ("timeout", 1, "test 2: timeout")
    finally:
        slow.close()


def test_stdio_tokens_eof_and_large_output(judge: Judge) -> None:
    problem = stdio(["3\n1 2 3\n", "1\n5"], ["6", "5\n"])
    reader = "n = int(input())\nprint(sum(map(int, input().split())))\n"
    ok = judge.judge(problem, reader)
    assert ok.passed and ok.tests_total == 2
    past_eof = "import sys\ndata = sys.stdin.read().split()\nextra = sys.stdin.read()\nprint(sum(map(int, data[1:])), extra)\n"
    assert judge.judge(problem, past_eof).passed  # reads after EOF get ''
    crash = judge.judge(problem, reader + "input()\n")  # one line more than given: EOFError
    assert crash.reason == "crashed" and "EOFError" in (crash.first_failure or "")
    floats = stdio(["2\n"], ["0.6667 x"], atol=1e-3)
    assert judge.judge(floats, "print(f'{int(input()) / 3:.6f} x')\n").passed
    assert not judge.judge(stdio(["2\n"], ["0.6667 x"]), "print(f'{int(input()) / 3:.6f} x')\n").passed
    flood = judge.judge(stdio(["\n"], ["1"]), "import sys\nwhile True:\n    sys.stdout.write('1' * 2 ** 20)\n")
    assert not flood.passed and flood.reason == "crashed", flood  # 16 MiB file limit, read back bounded


def test_formats_through_verify_rows_and_run_files(tmp_path: Path) -> None:
    rows_in = [
        {"id": "io", "prompt": "def double(x):\n", "kind": "code_io", "entry_point": "double",
         "inputs": [[1], [2.5]], "outputs": [2, 5.0]},
        {"id": "std", "prompt": "Print the sum.", "kind": "code_stdio", "inputs": ["1 2\n"], "outputs": ["3\n"],
         "atol": 0},
    ]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows_in))
    problems = load_jsonl(path)
    # RUN/problems.jsonl round trip: asdict, JSON, Problem(**row)
    problems = [Problem(**json.loads(json.dumps(asdict(p)))) for p in problems]
    by_id = {p.id: p for p in problems}
    rows = [{"problem_id": "io", "response": "```python\ndef double(x):\n    return 2 * x\n```"},
            {"problem_id": "std", "response": "```python\na, b = map(int, input().split())\nprint(a + b)\n```"},
            {"problem_id": "std", "response": "```python\nprint(4)\n```"},
            {"problem_id": "io", "response": ""}]
    verdicts = verify_rows(rows, by_id, workers=2, timeout_s=5, memory_mb=512)
    assert [v.reason for v in verdicts] == ["passed", "passed", "wrong_answer", "no_answer"]
    assert verdicts[0].tests_total == 2 and verdicts[2].first_failure == "test 1: wrong_answer: expected '3\\n', got '4\\n'"


@pytest.mark.parametrize(("row", "message"), [
    ({"kind": "code_io", "entry_point": "f", "inputs": [[1]]}, "field 'outputs' must be a non-empty list"),
    ({"kind": "code_io", "entry_point": "f", "inputs": [[1]], "outputs": [1, 2]}, "'inputs' has 1 entries"),
    ({"kind": "code_io", "entry_point": "f", "inputs": [1], "outputs": [1]}, r"inputs\[0\] must be a list"),
    ({"kind": "code_io", "entry_point": "f x", "inputs": [[1]], "outputs": [1]}, "field 'entry_point'"),
    ({"kind": "code_stdio", "inputs": ["1"], "outputs": [1]}, r"outputs\[0\] must be a string"),
    ({"kind": "code_stdio", "inputs": ["1"], "outputs": ["1"], "atol": -1}, "field 'atol'"),
    ({"kind": "code_stdio", "inputs": ["1"], "outputs": ["1"], "atol": "0.1"}, "field 'atol'"),
    ({"kind": "cobol", "inputs": ["1"], "outputs": ["1"]}, "field 'kind' must be one of"),
])
def test_bad_problem_rows_name_line_and_field(tmp_path: Path, row: dict, message: str) -> None:
    path = tmp_path / "p.jsonl"
    good = {"id": "ok", "prompt": "x", "answer": "1"}
    path.write_text(json.dumps(good) + "\n" + json.dumps({"id": "bad", "prompt": "p", **row}) + "\n")
    with pytest.raises(ValueError, match=rf"p.jsonl:2: .*{message}"):
        load_jsonl(path)


def _run_with_three_formats(root: Path) -> SampleStore:
    problems = [
        Problem("he", "def add(a, b):\n", "code", entry_point="add",
                tests="def check(candidate):\n    assert candidate(1, 2) == 3\n"),
        Problem("io", "def add(a, b):\n", "code_io", entry_point="add", inputs=[[1, 2], [0.5, 0.25]],
                outputs=[3, 0.75]),
        Problem("std", "Print the sum.", "code_stdio", inputs=["1 2\n", "5 5\n"], outputs=["3", "10"]),
    ]
    store = SampleStore.open_run(root, problems, {"spec": "test"})
    good = {"he": "def add(a, b):\n    return a + b\n", "io": "def add(a, b):\n    return a + b\n",
            "std": "a, b = map(int, input().split())\nprint(a + b)\n"}
    rows = [{"model": "m", "problem_id": pid, "sample_index": i, "seed": 1, "prompt_token_ids": [1],
             "response_token_ids": [2], "response": "```python\n" + (src if i == 0 else "print(1)\n") + "```",
             "finish_reason": "stop", "cumulative_logprob": -1.0}
            for pid, src in good.items() for i in range(2)]
    store.write_samples(rows)
    return store


def test_three_formats_through_passk_verify(tmp_path: Path) -> None:
    store = _run_with_three_formats(tmp_path)
    assert main(["verify", str(tmp_path), "--workers", "2"]) == 0
    got = {(r["problem_id"], r["sample_index"]): r for r in store.samples().to_pylist()}
    assert {k: r["correct"] for k, r in got.items()} == {
        ("he", 0): True, ("he", 1): False, ("io", 0): True, ("io", 1): False, ("std", 0): True, ("std", 1): False}
    assert (got["io", 0]["tests_passed"], got["io", 0]["tests_total"]) == (2, 2)
    assert got["std", 1]["first_failure"] == "test 1: wrong_answer: expected '3', got '1\\n'"
    assert got["he", 0]["answer_key"] and got["he", 0]["answer_key"] != got["he", 1]["answer_key"]


def test_passk_verify_stops_when_the_sandbox_cannot_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    store = _run_with_three_formats(tmp_path)
    monkeypatch.setattr(judge_module, "bwrap_base", lambda extra=(): ["bwrap", "--no-such-option"])
    assert main(["verify", str(tmp_path)]) == 3
    assert "the code verifier cannot run" in capsys.readouterr().err
    assert not store.verdict_keys("m")  # nothing stored for those samples
