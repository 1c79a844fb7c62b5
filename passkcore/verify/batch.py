"""Batch verification of sample rows.

Math: ``math_pool.verify_math`` (worker processes under an address-space limit, a sample that overruns
its limit has its worker killed and is the only one judged ``timeout``). Code:
``passkcore.verify.code.verify_code_rows`` (sandboxed judges, one per worker thread; VerifierUnavailable when
the sandbox cannot run).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional

from passkcore.problems import Problem
from passkcore.verify.choice import local_verdict
from passkcore.verify.code import verify_code_rows
from passkcore.verify.math import EXTRACT_POLICIES
from passkcore.verify.math_pool import verify_math
from passkcore.verify.verdict import Verdict


def verify_rows(
    rows: Sequence[Mapping[str, Any]],
    problems: Mapping[str, Problem],
    *,
    workers: Optional[int] = None,
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
    progress: Optional[Callable[[int], None]] = None,
    math_extract: str = "fallback",
    allow_packages: Sequence[str] = (),
) -> list[Verdict]:
    """Verdicts for sample rows (``problem_id`` and ``response``), in row order. Math answers are
    taken under ``math_extract`` (``fallback`` or ``boxed``, see ``check_math``); ``timeout_s`` and
    ``memory_mb`` limit each sample, math and code alike; code sees the standard library and the
    ``allow_packages`` only (recorded in each code verdict's ``verifier``). Raises
    VerifierUnavailable, and returns no verdicts, when the code sandbox cannot run or shows the host."""
    if math_extract not in EXTRACT_POLICIES:
        raise ValueError(f"math_extract must be one of {EXTRACT_POLICIES}, got {math_extract!r}")
    workers = workers or max(1, os.cpu_count() or 1)
    verdicts: list[Optional[Verdict]] = [None] * len(rows)
    math_idx, math_items, code_idx = [], [], []
    for i, row in enumerate(rows):
        pid = str(row["problem_id"])
        if pid not in problems:
            raise ValueError(f"row {i}: problem_id {pid!r} is not among the run's problems")
        problem = problems[pid]
        local = local_verdict(str(row["response"]), problem) if problem.kind == "math" else None
        if local is not None:  # multiple choice and numbers to a precision: passkcore.verify.choice
            verdicts[i] = local
        elif problem.kind == "math":
            math_idx.append(i)
            math_items.append((str(row["response"]), str(problem.answer)))
        else:
            code_idx.append(i)
    if math_items:
        math_verdicts = verify_math(math_items, workers=workers, timeout_s=timeout_s, memory_mb=memory_mb,
                                    extract=math_extract, progress=progress)
        for i, v in zip(math_idx, math_verdicts):
            verdicts[i] = v

    code_verdicts = verify_code_rows([rows[i] for i in code_idx], [problems[str(rows[i]["problem_id"])] for i in code_idx],
                                     workers=workers, timeout_s=timeout_s, memory_mb=memory_mb, progress=progress,
                                     allow_packages=allow_packages)
    for i, v in zip(code_idx, code_verdicts):
        verdicts[i] = v
    return [v for v in verdicts if v is not None]
