"""Batch verification of sample rows.

Math: chunks of samples go to a spawned process pool. Inside a worker, tasks run on the process's main
thread, where a per-sample ITIMER_REAL limit can interrupt math-verify (whose own alarm-based
timeouts are disabled); a chunk that still overruns (a C extension ignoring signals) gets its pool
killed and its samples judged ``timeout``. Code: passkcore.verify.code.verify_code_rows (sandboxed
judges, one per worker thread; VerifierUnavailable when the sandbox cannot run).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from multiprocessing import get_context
from typing import Any, Optional

from passkcore.problems import Problem
from passkcore.verify.code import verify_code_rows
from passkcore.verify.math import VERIFIER as MATH_VERIFIER
from passkcore.verify.verdict import Verdict

_MATH_CHUNK = 64


class _SampleTimeout(Exception):
    pass


def _on_alarm(signum: int, frame: Any) -> None:
    raise _SampleTimeout()


def _math_chunk(items: list[tuple[str, str]], timeout_s: float) -> list[tuple[bool, str, Optional[str], str]]:
    """Runs in a pool worker: (response, gold) pairs -> verdict fields."""
    from passkcore.verify.math import check_math

    signal.signal(signal.SIGALRM, _on_alarm)
    out = []
    for response, gold in items:
        signal.setitimer(signal.ITIMER_REAL, timeout_s)
        try:
            v = check_math(response, gold)
            out.append((v.passed, v.reason, v.extracted, ""))
        except _SampleTimeout:
            out.append((False, "timeout", None, f"over {timeout_s:g} s"))
        except Exception as exc:  # noqa: BLE001 - a parser failure on one sample must not stop the batch
            out.append((False, "crashed", None, f"{type(exc).__name__}: {exc}"[:300]))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    return out


def _kill_pool(pool: ProcessPoolExecutor) -> None:
    for proc in list(getattr(pool, "_processes", {}).values()):
        proc.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def _verify_math(items: list[tuple[str, str]], workers: int, timeout_s: float,
                 progress: Optional[Callable[[int], None]]) -> list[Verdict]:
    chunks = [items[i:i + _MATH_CHUNK] for i in range(0, len(items), _MATH_CHUNK)]
    results: list[Optional[list[tuple[bool, str, Optional[str], str]]]] = [None] * len(chunks)
    pending = list(range(len(chunks)))
    while pending:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
        futures = {i: pool.submit(_math_chunk, chunks[i], timeout_s) for i in pending}
        # Generous: the chunk's own per-sample limits, plus worker start-up (sympy import ~2 s).
        budget = _MATH_CHUNK * timeout_s + 60.0
        hung: Optional[int] = None
        for i in pending:
            try:
                results[i] = futures[i].result(timeout=budget)
                if progress:
                    progress(len(chunks[i]))
            except FutureTimeout:
                hung = i
                break
        if hung is None:
            pool.shutdown()
            break
        _kill_pool(pool)
        results[hung] = [(False, "timeout", None, "verifier did not respond") for _ in chunks[hung]]
        pending = [i for i in pending if results[i] is None]
    return [Verdict(p, r, e, MATH_VERIFIER, d) for chunk in results for (p, r, e, d) in (chunk or [])]


def verify_rows(
    rows: Sequence[Mapping[str, Any]],
    problems: Mapping[str, Problem],
    *,
    workers: Optional[int] = None,
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
    progress: Optional[Callable[[int], None]] = None,
) -> list[Verdict]:
    """Verdicts for sample rows (``problem_id`` and ``response``), in row order. Raises
    VerifierUnavailable, and returns no verdicts, when the code sandbox cannot run."""
    workers = workers or max(1, os.cpu_count() or 1)
    verdicts: list[Optional[Verdict]] = [None] * len(rows)
    math_idx, math_items, code_idx = [], [], []
    for i, row in enumerate(rows):
        pid = str(row["problem_id"])
        if pid not in problems:
            raise ValueError(f"row {i}: problem_id {pid!r} is not among the run's problems")
        problem = problems[pid]
        if problem.kind == "math":
            math_idx.append(i)
            math_items.append((str(row["response"]), str(problem.answer)))
        else:
            code_idx.append(i)
    if math_items:
        for i, v in zip(math_idx, _verify_math(math_items, workers, timeout_s, progress)):
            verdicts[i] = v

    code_verdicts = verify_code_rows([rows[i] for i in code_idx], [problems[str(rows[i]["problem_id"])] for i in code_idx],
                                     workers=workers, timeout_s=timeout_s, memory_mb=memory_mb, progress=progress)
    for i, v in zip(code_idx, code_verdicts):
        verdicts[i] = v
    return [v for v in verdicts if v is not None]
