from __future__ import annotations

import pytest

from passkcore.problems import Problem
from passkcore.verify import verify_rows
from passkcore.verify.choice import check_choice, check_number, gold_option

VISTA = Problem("1", "What is the angle?", "math", answer="145°", choices=["100°", "145°", "30°"], answer_type="text")
VISION = Problem("2", "Which one?", "math", answer="C", choices=["1", "2", "3"])


@pytest.mark.parametrize("response, ok", [
    ("\\boxed{B}", True), ("so \\boxed{(B)}", True), ("\\boxed{145°}", True), ("\\boxed{ 145° }", True),
    ("The answer is B", False),  # the last line is a sentence, not a letter or an option
    ("\\boxed{A}", False), ("\\boxed{100°}", False), ("\\boxed{Z}", False),
])
def test_mathvista_letter_or_option_text(response: str, ok: bool) -> None:
    assert check_choice(response, VISTA).passed is ok


def test_mathvision_letter_reference() -> None:
    assert gold_option(VISION) == 2
    assert check_choice("\\boxed{C}", VISION).passed and check_choice("\\boxed{3}", VISION).passed
    assert not check_choice("\\boxed{2}", VISION).passed
    assert check_choice("", VISION).reason == "no_answer"


def test_reference_must_name_an_option() -> None:
    with pytest.raises(ValueError, match="neither an option nor an option's letter"):
        gold_option(Problem("3", "q", "math", answer="7", choices=["1", "2"]))


@pytest.mark.parametrize("answer, precision, response, ok", [
    ("1.25", 2, "\\boxed{1.251}", True), ("1.25", 2, "\\boxed{1.26}", False), ("1.2", 1, "\\boxed{1.24}", True),
    ("0.5", None, "\\boxed{0.504}", True), ("3.1", 1, "x = 3.1", True),
])
def test_float_to_the_benchmark_precision(answer: str, precision: int, response: str, ok: bool) -> None:
    problem = Problem("f", "q", "math", answer=answer, answer_type="float", precision=precision)
    assert check_number(response, problem).passed is ok


def test_integer_answers() -> None:
    problem = Problem("i", "q", "math", answer="1,200", answer_type="integer")
    assert check_number("\\boxed{1200}", problem).passed and check_number("\\boxed{1,200.0}", problem).passed
    assert not check_number("\\boxed{1200.5}", problem).passed
    assert check_number("no digits", problem).reason == "no_answer"


def test_verify_rows_routes_choice_number_and_free_form() -> None:
    free = Problem("t", "q", "math", answer="\\frac{1}{2}", answer_type="text")
    number = Problem("n", "q", "math", answer="3", answer_type="integer")
    problems = {p.id: p for p in (VISTA, free, number)}
    rows = [{"problem_id": "1", "response": "\\boxed{145°}"}, {"problem_id": "t", "response": "\\boxed{0.5}"},
            {"problem_id": "n", "response": "\\boxed{4}"}]
    verdicts = verify_rows(rows, problems, workers=1)
    assert [v.passed for v in verdicts] == [True, True, False]
    assert [v.verifier for v in verdicts] == ["choice", "math-verify", "number"]
