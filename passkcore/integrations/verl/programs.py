"""Code rewards: verl's code data (APPS/TACO/CodeContests tests as verl's ``prime_code`` reads them) judged
in passkcore's sandbox (passkcore.verify.judge), by a pool of judges kept for the process.

The ground truth is a JSON object (or dict) with ``inputs`` and ``outputs``, one entry per test:

- without ``fn_name``: stdin/stdout tests, ``inputs[i]`` the text on stdin (or a list of lines),
  ``outputs[i]`` the expected stdout (or a list of lines), compared token by token;
- with ``fn_name``: calls, ``inputs[i]`` the arguments (a list, or prime_code's text of one JSON value per
  line), ``outputs[i]`` the return value (a value, or its JSON text); a result equal to the value, or to
  its only element when the value is a one-element list (APPS wraps results so), passes. A program that
  defines ``class Solution`` is called as ``Solution().fn_name``, as prime_code does.

Programs run after the import header prime_code puts in front of every program (``from math import *``,
``from typing import *`` and the like), so a program verl's reward accepts for a name it never imported
is not failed here for that.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import re
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

import numpy as np

from passkcore.problems import Problem
from passkcore.verify.code import self_test
from passkcore.verify.compare import values_equal
from passkcore.verify.judge import Judge
from passkcore.verify.verdict import Verdict

# prime_code's header (verl/utils/reward_score/prime_code/testing_util.py), without its recursion limit
# of 600,000 (the sandbox's memory limit stops a runaway recursion either way; CPython's default 1,000
# is raised to what a C stack of 8 MiB holds).
HEADER = "".join(f"from {m} import *\n" for m in (
    "string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math", "random", "statistics",
    "itertools", "functools", "operator", "io", "sys", "json", "builtins", "typing")) + "".join(
    f"import {m}\n" for m in ("string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math",
                              "random", "statistics", "itertools", "functools", "operator", "io", "sys",
                              "json")) + "sys.setrecursionlimit(20000)\n"

_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_PYTHON = ("python", "python3", "py", "")


def extract_program(response: str) -> Optional[str]:
    """The program in a response, as verl takes it: the last fenced block marked python (``python``,
    ``python3``, ``py``) or unmarked; a response without any fence is the program itself; None when
    fences hold no Python block or the program is blank."""
    blocks = _FENCE.findall(response)
    if not blocks:
        program = response
    else:
        python = [body for lang, body in blocks if lang.lower() in _PYTHON]
        if not python:
            return None
        program = python[-1]
    return program if program.strip() else None


def _plain(value: Any) -> Any:
    """numpy arrays (parquet rows read by pandas) as lists, recursively."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def tests_of(ground_truth: Any) -> Optional[dict[str, Any]]:
    """The ground truth as a dict of tests (``inputs``, ``outputs``, maybe ``fn_name``), or None when it is
    not one (a JSON text or mapping without both lists)."""
    if isinstance(ground_truth, (str, bytes)):
        text = ground_truth.decode("utf-8", "replace") if isinstance(ground_truth, bytes) else ground_truth
        text = text.strip()
        if not text.startswith("{"):
            return None
        try:
            ground_truth = json.loads(text)
        except ValueError:
            return None
    if not isinstance(ground_truth, Mapping) or "inputs" not in ground_truth or "outputs" not in ground_truth:
        return None
    return {str(k): _plain(v) for k, v in ground_truth.items()}


def _text(value: Any, field: str, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    raise ValueError(f"{where}: {field} must be text or a list of lines, got {type(value).__name__}")


def _args(value: Any, where: str) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, str):  # prime_code's format: one JSON value per line
        try:
            return [json.loads(line) for line in value.split("\n")]
        except ValueError as exc:
            raise ValueError(f"{where}: inputs hold text that is not one JSON value per line ({exc})") from None
    return [value]


def _value(value: Any) -> Any:
    if isinstance(value, str):  # prime_code's format: the JSON text of the value
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def problem_of(tests: dict[str, Any], program: str, where: str) -> Problem:
    """The sandbox's problem for a ground truth's tests (``where`` names the response in errors)."""
    inputs, outputs = tests["inputs"], tests["outputs"]
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        raise ValueError(f"{where}: the ground truth's inputs and outputs must be lists")
    if len(inputs) != len(outputs):
        raise ValueError(f"{where}: the ground truth has {len(inputs)} inputs but {len(outputs)} outputs")
    if not inputs:  # verl's prime_code gives 1.0 to any program here: all([]) is True
        raise ValueError(f"{where}: the ground truth has no tests")
    fn_name = tests.get("fn_name")
    if fn_name is None or fn_name == "":
        return Problem("verl", "", "code_stdio", inputs=[_text(x, f"inputs[{i}]", where) for i, x in enumerate(inputs)],
                       outputs=[_text(y, f"outputs[{i}]", where) for i, y in enumerate(outputs)])
    if not isinstance(fn_name, str) or not fn_name.isidentifier():
        raise ValueError(f"{where}: the ground truth's fn_name must be a Python identifier, got {fn_name!r}")
    entry = f"Solution.{fn_name}" if re.search(r"^class\s+Solution\b", program, re.M) else fn_name
    return Problem("verl", "", "code_io", entry_point=entry, inputs=[_args(x, where) for x in inputs],
                   outputs=[_value(y) for y in outputs])


def apps_equal(got: Any, expected: Any, atol: Optional[float] = None) -> bool:
    """APPS's comparison of a call's result: equal to the expected value, or to its only element."""
    return values_equal(got, expected, atol) or (type(expected) is list and len(expected) == 1
                                                 and values_equal(got, expected[0], atol))


class JudgePool:
    """Judges kept for the life of the process (verl calls every step: their sandboxes start once);
    ``judge_all`` lends them to a batch's threads, one judge per thread at a time. Any thread may start
    a judge's sandboxes: passkcore.verify.spawner forks them from its own long-lived thread, so they
    outlive the batch's threads. Each judge is self-tested once (VerifierUnavailable when the sandbox
    cannot run or shows the host). A forked copy of the process starts its own judges."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = os.getpid()
        self.idle: queue.SimpleQueue[Judge] = queue.SimpleQueue()
        self.judges: list[Judge] = []

    def _take(self, timeout_s: float, memory_mb: int) -> Judge:
        with self.lock:
            if self.pid != os.getpid():  # the parent's judges talk to the parent's sandboxes
                self.pid, self.idle, self.judges = os.getpid(), queue.SimpleQueue(), []
        try:
            judge = self.idle.get_nowait()
        except queue.Empty:
            judge = Judge(timeout_s=timeout_s, memory_mb=memory_mb)
            try:
                self_test(judge)
            except BaseException:
                judge.close()
                raise
            with self.lock:
                self.judges.append(judge)
        judge.timeout_s, judge.memory_mb = timeout_s, memory_mb  # read per program
        return judge

    def judge(self, program: str, problem: Problem, timeout_s: float, memory_mb: int,
              atol: Optional[float]) -> Verdict:
        """One program's verdict, on a judge lent for the call."""
        judge = self._take(timeout_s, memory_mb)
        try:
            verdict = _run(judge, program, problem, atol)
        except BaseException:
            with self.lock:
                if judge in self.judges:
                    self.judges.remove(judge)
            judge.close()  # left in an unknown state
            raise
        self.idle.put(judge)
        return verdict

    def judge_all(self, jobs: Sequence[tuple[str, Problem]], *, workers: int, timeout_s: float, memory_mb: int,
                  atol: Optional[float] = None) -> list[Verdict]:
        """Verdicts of (program, problem) pairs, in order, at most ``workers`` at a time."""
        if workers <= 1 or len(jobs) <= 1:
            return [self.judge(*job, timeout_s, memory_mb, atol) for job in jobs]
        with ThreadPoolExecutor(max_workers=min(workers, len(jobs)), thread_name_prefix="passk-verl-judge") as pool:
            return list(pool.map(lambda job: self.judge(job[0], job[1], timeout_s, memory_mb, atol), jobs))

    def close(self) -> None:
        with self.lock:
            judges, self.judges, self.idle = self.judges, [], queue.SimpleQueue()
            mine = self.pid == os.getpid()
        for judge in judges if mine else []:
            judge.close()


def _run(judge: Judge, program: str, problem: Problem, atol: Optional[float]) -> Verdict:
    source = HEADER + program
    assert problem.inputs is not None and problem.outputs is not None
    if problem.kind == "code_io":
        assert problem.entry_point is not None
        return judge.function_io(source, problem.entry_point, problem.inputs, problem.outputs,
                                 equal=lambda got, expected: apps_equal(got, expected, atol))
    return judge.stdio(source, problem.inputs, problem.outputs, atol)


JUDGES = JudgePool()
atexit.register(JUDGES.close)
