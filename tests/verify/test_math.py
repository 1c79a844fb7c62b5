from __future__ import annotations

import pytest

from passkcore.verify import Verdict, check_math
from passkcore.verify.math import ANSWER_KEY_MAX, answer_key


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


@pytest.mark.parametrize(
    ("response", "fallback", "boxed"),
    [
        ("The answer is \\boxed{13}.", "passed", "passed"),
        ("so the answer is 13", "passed", "no_answer"),
        ("The answer: $13$", "passed", "no_answer"),
        ("\\boxed{12}, final answer: 13", "wrong_answer", "wrong_answer"),
        ("\\fbox{13}", "no_answer", "passed"),  # math-verify's own regexes look for \\boxed only
        ("nothing here", "no_answer", "no_answer"),
    ],
)
def test_extraction_policies(response: str, fallback: str, boxed: str) -> None:
    assert check_math(response, "13").reason == fallback
    v = check_math(response, "13", extract="boxed")
    assert (v.reason, v.extract_policy) == (boxed, "boxed")
    assert check_math(response, "13").extract_policy == "fallback"
    with pytest.raises(ValueError, match="extract must be one of"):
        check_math(response, "13", extract="last")


def test_answer_keys_name_answer_classes() -> None:
    keys = [check_math(r, "0.5").answer_key for r in ("\\boxed{\\frac{1}{2}}", "\\boxed{\\dfrac12}", "so 1/2")]
    assert keys == ["1/2", "1/2", "1/2"]
    assert check_math("\\boxed{2x+2}", "1").answer_key == check_math("\\boxed{2 x + 2}", "1").answer_key
    assert check_math("\\boxed{3}", "1").answer_key != check_math("\\boxed{4}", "1").answer_key
    assert check_math("no idea", "1").answer_key is None
    long_key = answer_key("x" * 1000)
    assert long_key.startswith("sha256:") and len(long_key) <= ANSWER_KEY_MAX
