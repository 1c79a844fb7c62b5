"""HF evaluate's ``code_eval``, sandboxed: same arguments, same return shape, no environment variable.

``evaluate.load("code_eval").compute(...)`` runs every candidate program and its tests with ``exec`` in a
worker process of the caller's machine (hence ``HF_ALLOW_CODE_EVAL=1``), and silently drops every k for
which some problem has fewer than k samples. Here each (candidate, reference) pair runs in passkcore's two
sandboxes (passkcore.integrations.code), pass@k is the core's unbiased estimator, and a k above some
problem's n is dropped with a warning naming it and the problem.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Union

import numpy as np

import passkcore
from passkcore.integrations.code import CodeRunner


def _check(predictions: Any, references: Any) -> None:
    if isinstance(predictions, (str, bytes)) or not isinstance(predictions, Sequence):
        raise ValueError(f"predictions must be a list (one list of programs per problem), got {type(predictions).__name__}")
    if isinstance(references, (str, bytes)) or not isinstance(references, Sequence):
        raise ValueError(f"references must be a list (one test program per problem), got {type(references).__name__}")
    if len(predictions) != len(references):
        raise ValueError(f"predictions has {len(predictions)} problems but references has {len(references)}")
    for i, ref in enumerate(references):
        if not isinstance(ref, str):
            raise ValueError(f"references[{i}] must be a string of test code, got {type(ref).__name__}")
    for i, cands in enumerate(predictions):
        if isinstance(cands, (str, bytes)) or not isinstance(cands, Sequence):
            raise ValueError(f"predictions[{i}] must be a list of programs, got {type(cands).__name__}")
        for j, prog in enumerate(cands):
            if not isinstance(prog, str):
                raise ValueError(f"predictions[{i}][{j}] must be a string, got {type(prog).__name__}")


def ks_list(k: Any) -> list[int]:
    """``k`` as a list of distinct positive ints (an int or a list of ints), in the given order."""
    raw = [k] if not isinstance(k, (list, tuple)) else list(k)
    out: list[int] = []
    for i, v in enumerate(raw):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"k[{i}] must be a positive int, got {v!r}")
        if int(v) not in out:
            out.append(int(v))
    if not out:
        raise ValueError("k is empty: ask for at least one k")
    return out


def code_eval(predictions: Sequence[Sequence[str]], references: Sequence[str], k: Union[int, Sequence[int]] = [1, 10, 100],  # noqa: B006 (code_eval's default; never mutated)
              num_workers: int = 4, timeout: float = 3.0) -> tuple[dict[str, float], dict[int, list[tuple[int, dict[str, Any]]]]]:
    """``(pass_at_k, results)`` as ``code_eval`` returns them: ``{"pass@k": mean over problems}`` and
    ``{task_index: [(completion_id, {"task_id", "passed", "result", "completion_id"}), ...]}``.

    ``predictions[i]`` holds problem i's candidate programs, ``references[i]`` its test code, which calls
    the candidate's functions by name (``assert add(2, 3) == 5``, or HumanEval's ``check`` followed by
    ``check(entry_point)``). ``timeout`` is per program, in seconds; ``num_workers`` sandboxes run at once.
    """
    _check(predictions, references)
    ks = ks_list(list(k) if isinstance(k, (list, tuple)) else k)
    items = [(prog, references[i]) for i, cands in enumerate(predictions) for prog in cands]
    with CodeRunner(num_workers, timeout) as runner:
        outcomes = runner.run(items)
    results: dict[int, list[tuple[int, dict[str, Any]]]] = {}
    n = np.zeros(len(predictions), dtype=np.int64)
    c = np.zeros(len(predictions), dtype=np.int64)
    at = 0
    for i, cands in enumerate(predictions):
        rows = results.setdefault(i, [])
        for j in range(len(cands)):
            out = outcomes[at]
            at += 1
            rows.append((j, {"task_id": i, "passed": out.passed, "result": out.result, "completion_id": j}))
            c[i] += out.passed
        n[i] = len(cands)
    if not predictions:
        return {}, results
    return pass_at_k_means(n, c, ks), results


def pass_at_k_means(n: np.ndarray, c: np.ndarray, ks: list[int]) -> dict[str, float]:
    """``{"pass@k": mean unbiased pass@k}`` for each k every problem reaches; the others are dropped with a
    warning naming k and the first short problem."""
    out: dict[str, float] = {}
    for k in ks:
        short = np.flatnonzero(n < k)
        if short.size:
            first = int(short[0])
            warnings.warn(f"pass@{k} dropped: {short.size} problem(s) have fewer than k={k} samples "
                          f"(problem {first} has n={int(n[first])})", UserWarning, stacklevel=3)
            continue
        out[f"pass@{k}"] = float(np.mean(passkcore.pass_at_k(n, c, k)))
    return out
