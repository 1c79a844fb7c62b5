from __future__ import annotations

import pytest

from passkcore.verify import Verdict, check_math


@pytest.mark.parametrize(
    ("response", "gold", "passed", "reason"),
    [
        ("The answer is \\boxed{13}.", "13", True, "passed"),
        ("We get \\boxed{\\frac{1}{2}}", "0.5", True, "passed"),
        ("first 7, finally \\boxed{12}", "13", False, "wrong_answer"),
        ("I do not know.", "13", False, "no_answer"),
        ("\\boxed{2x+2}", "2(x+1)", True, "passed"),
    ],
)
def test_check_math(response: str, gold: str, passed: bool, reason: str) -> None:
    v = check_math(response, gold)
    assert (v.passed, v.reason, v.verifier) == (passed, reason, "math-verify")


def test_bad_gold_and_types() -> None:
    with pytest.raises(ValueError, match="could not be parsed"):
        check_math("\\boxed{1}", "")
    with pytest.raises(TypeError):
        check_math(None, "1")  # type: ignore[arg-type]


def test_verdict_consistency() -> None:
    with pytest.raises(ValueError, match="reason must be one of"):
        Verdict(False, "nope")
    with pytest.raises(ValueError, match="contradicts"):
        Verdict(True, "wrong_answer")
