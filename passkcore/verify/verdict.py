from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

REASONS = ("passed", "wrong_answer", "no_answer", "timeout", "memory", "crashed")


@dataclass(frozen=True)
class Verdict:
    """Whether a sample is correct, and why."""

    passed: bool
    reason: str
    extracted: Optional[str] = None
    verifier: str = ""
    detail: str = ""

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"reason must be one of {REASONS}, got {self.reason!r}")
        if self.passed != (self.reason == "passed"):
            raise ValueError(f"passed={self.passed} contradicts reason {self.reason!r}")
