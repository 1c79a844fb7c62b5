"""Problem loaders: HumanEval from the wheel, JSONL with named errors, the seeded generator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from passkcore.problem_files import load_problems
from passkcore.problems import arithmetic, load_humaneval, load_jsonl


def test_humaneval_from_the_wheel() -> None:
    problems = load_humaneval()
    assert len(problems) == 164 and len({p.id for p in problems}) == 164
    first = problems[0]
    assert first.id == "HumanEval/0" and first.kind == "code" and first.entry_point == "has_close_elements"
    assert "def check(candidate)" in (first.tests or "")
    assert len(load_problems("humaneval", limit=5)) == 5


def test_arithmetic_is_seeded_and_exact() -> None:
    a, b = arithmetic(20, seed=3), arithmetic(20, seed=3)
    assert a == b and a != arithmetic(20, seed=4)
    for p in a:
        assert p.kind == "math" and p.answer is not None and int(p.answer) >= 0
    total = next(p for p in a if "boxes" in p.prompt)
    boxes, each = (int(w) for w in total.prompt.split() if w.isdigit())
    assert int(total.answer or 0) == boxes * each
    assert len(load_problems("arith:7")) == 7 and load_problems("arith", limit=3) == arithmetic(50)[:3]


def test_jsonl_math_and_code(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"id": 1, "prompt": "1+1?", "answer": "2"}) + "\n\n"
                    + json.dumps({"id": "f", "prompt": "def f():\n", "tests": "def check(c): pass", "entry_point": "f"}) + "\n")
    problems = load_jsonl(path)
    assert [(p.id, p.kind) for p in problems] == [("1", "math"), ("f", "code")]


@pytest.mark.parametrize(
    ("lines", "match"),
    [
        (['{"id": 1, "prompt": "x", "answer": "1"}', '{"id": 1, "prompt": "y", "answer": "2"}'], "duplicate problem id '1'"),
        (['{"id": 1, "answer": "1"}'], r":1: missing or empty field 'prompt'"),
        (['{"id": 1, "prompt": "x"}'], r":1: needs 'answer', or 'tests' and 'entry_point'"),
        (['{"id": 1, "prompt": "x", "answer": "1"}', "{oops"], r":2: not valid JSON"),
        ([], "no problems"),
    ],
)
def test_jsonl_errors_name_the_line(tmp_path: Path, lines: list[str], match: str) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=match):
        load_jsonl(path)


def test_missing_file_and_bad_limit(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        load_problems(str(tmp_path / "none.jsonl"))
    with pytest.raises(ValueError, match="limit must be at least 1"):
        load_problems("arith", limit=0)
