from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

REASONS = ("passed", "wrong_answer", "no_answer", "timeout", "memory", "crashed")
# The verdict columns of a stored verdict row (store.VERDICT_SCHEMA), besides the sample's key.
VERDICT_COLUMNS = ("correct", "extracted_answer", "verifier", "reason", "detail", "tests_passed", "tests_total",
                   "first_failure", "answer_key", "extract_policy")


@dataclass(frozen=True)
class Verdict:
    """Whether a sample is correct, and why."""

    passed: bool
    reason: str
    extracted: Optional[str] = None
    verifier: str = ""
    detail: str = ""
    # Code: how many of the problem's tests passed, of how many, and the first failing one and why.
    tests_passed: Optional[int] = None
    tests_total: Optional[int] = None
    first_failure: Optional[str] = None
    # Samples of one problem with equal keys gave the same answer (maj@k answer classes): a canonical
    # form of the extracted math answer, or a digest of a program's outputs on the tests.
    answer_key: Optional[str] = None
    # How the answer was taken from the response (math: "fallback" or "boxed").
    extract_policy: Optional[str] = None

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"reason must be one of {REASONS}, got {self.reason!r}")
        if self.passed != (self.reason == "passed"):
            raise ValueError(f"passed={self.passed} contradicts reason {self.reason!r}")

    def as_row(self) -> dict[str, Any]:
        """The verdict columns of a stored verdict row (``VERDICT_COLUMNS``)."""
        return {"correct": self.passed, "extracted_answer": self.extracted, "verifier": self.verifier,
                "reason": self.reason, "detail": self.detail, "tests_passed": self.tests_passed,
                "tests_total": self.tests_total, "first_failure": self.first_failure,
                "answer_key": self.answer_key, "extract_policy": self.extract_policy}
