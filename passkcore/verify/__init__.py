"""Verification: math answers with math-verify, code against unit tests in a sandbox.

Every verdict records why: ``passed``, ``wrong_answer``, ``no_answer``, ``timeout``, ``memory`` or
``crashed``. Model-generated code only ever runs in a sandboxed subprocess, never in this process, and its verdict
is decided outside that process (judge.py); a sandbox sees the interpreter, its standard library and the
allowlisted packages only (mounts.py, packages.py, docs/threat-model.md). A sandbox that cannot run, or
that shows the host, raises VerifierUnavailable; tests that call a name nobody defined raise
IncompleteTests.
"""

from __future__ import annotations

from passkcore.verify.batch import verify_rows
from passkcore.verify.code import check_code, extract_program
from passkcore.verify.judge import IncompleteTests, VerifierUnavailable
from passkcore.verify.math import check_math
from passkcore.verify.verdict import REASONS, Verdict

__all__ = ["REASONS", "IncompleteTests", "Verdict", "VerifierUnavailable", "check_code", "check_math", "extract_program", "verify_rows"]
