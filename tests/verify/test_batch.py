from __future__ import annotations

import pytest

from passkcore.problems import Problem, load_humaneval
from passkcore.verify import verify_rows


def test_mixed_batch_keeps_row_order() -> None:
    he = load_humaneval(1)[0]
    canonical = "```python\n" + he.prompt + "    for i, a in enumerate(numbers):\n        for b in numbers[i + 1:]:\n" \
        "            if abs(a - b) < threshold:\n                return True\n    return False\n```"
    problems = {"m": Problem("m", "2+2?", "math", answer="4"), he.id: he}
    rows = [
        {"problem_id": "m", "response": "\\boxed{4}"},
        {"problem_id": he.id, "response": canonical},
        {"problem_id": "m", "response": "\\boxed{5}"},
        {"problem_id": he.id, "response": "no code here at all"},
        {"problem_id": "m", "response": "nothing"},
    ]
    verdicts = verify_rows(rows, problems, workers=2)
    assert [v.reason for v in verdicts] == ["passed", "passed", "wrong_answer", "crashed", "no_answer"]
    done: list[int] = []
    verify_rows(rows[:1], problems, progress=done.append)
    assert sum(done) == 1


def test_unknown_problem_is_named() -> None:
    with pytest.raises(ValueError, match="row 0: problem_id 'x'"):
        verify_rows([{"problem_id": "x", "response": ""}], {})


def test_math_extract_is_checked_and_used() -> None:
    problems = {"m": Problem("m", "2+2?", "math", answer="4")}
    rows = [{"problem_id": "m", "response": "it is 4"}, {"problem_id": "m", "response": "\\boxed{4}"}]
    assert [v.reason for v in verify_rows(rows, problems, workers=1)] == ["passed", "passed"]
    boxed = verify_rows(rows, problems, workers=1, math_extract="boxed")
    assert [(v.reason, v.extract_policy) for v in boxed] == [("no_answer", "boxed"), ("passed", "boxed")]
    with pytest.raises(ValueError, match="math_extract"):
        verify_rows(rows, problems, math_extract="first")
