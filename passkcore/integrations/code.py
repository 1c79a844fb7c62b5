"""code_eval-style references run in passkcore's sandbox: the shared engine of the evaluate and lm-eval
integrations.

HF evaluate's ``code_eval`` (and lm-eval's humaneval/mbpp tasks through it) ``exec``s the candidate
program followed by the reference test code in one process, unsandboxed. Here the candidate runs in the
candidate sandbox and the reference in the harness sandbox (passkcore.verify.judge): every top-level
function the candidate defines is bound in the reference's namespace as a proxy that calls it across the
sandbox boundary, with plain data both ways. The candidate never sees the tests, and nothing it prints,
patches or returns (other than the values the tests check) decides its verdict.

Limits, by design: only top-level functions (``def`` or a name bound to a ``lambda``) are callable from the
references, and only with plain-data arguments and results; names of Python builtins are never bound
(a candidate's ``abs`` must not replace the tests' ``abs``).
"""

from __future__ import annotations

import ast
import atexit
import builtins
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Optional

from passkcore.verify.code import self_test
from passkcore.verify.judge import Judge

DISPATCH = "__passk_call__"
# Appended to the candidate: the one entry point the candidate sandbox serves, calling a function by name.
_DISPATCHER = f"""

def {DISPATCH}(__passk_name, *args, **kwargs):
    return globals()[__passk_name](*args, **kwargs)
"""
_HARNESS = """
import functools as __passk_functools


def check(__passk_candidate):
    scope = {{"__name__": "__passk_reference__"}}
    for name in {names!r}:
        scope[name] = __passk_functools.partial(__passk_candidate, name)
    exec(compile({reference!r}, "reference.py", "exec"), scope)
"""
_BUILTINS = frozenset(dir(builtins))


@dataclass(frozen=True)
class Outcome:
    """One program's verdict in code_eval's terms: ``result`` is ``passed``, ``timed out`` or ``failed: ...``."""

    passed: bool
    result: str


def _defined(body: Sequence[ast.stmt], names: dict[str, None]) -> None:
    for node in body:
        if isinstance(node, ast.FunctionDef):
            names[node.name] = None
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Lambda):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names[target.id] = None
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            _defined(node.body, names)
            for extra in (getattr(node, "orelse", []), getattr(node, "finalbody", [])):
                _defined(extra, names)
            for handler in getattr(node, "handlers", []):
                _defined(handler.body, names)


def callable_names(program: str) -> list[str]:
    """The top-level functions ``program`` defines (read with ``ast``, never run), builtins' names left out.
    SyntaxError when the program does not parse."""
    names: dict[str, None] = {}
    _defined(ast.parse(program).body, names)
    return [n for n in names if n not in _BUILTINS and not n.startswith("__passk")]


def harness_tests(reference: str, names: Sequence[str]) -> str:
    """The harness sandbox's ``check(candidate)``: runs ``reference`` with each name bound to the candidate."""
    return _HARNESS.format(names=list(names), reference=reference)


def _outcome(judge: Judge, program: str, reference: str) -> Outcome:
    try:
        names = callable_names(program)
    except (SyntaxError, ValueError) as exc:  # ValueError: a NUL byte in the source
        return Outcome(False, f"failed: {type(exc).__name__}: {exc}")
    verdict = judge.check(program + _DISPATCHER, harness_tests(reference, names), DISPATCH)
    if verdict.passed:
        return Outcome(True, "passed")
    if verdict.reason == "timeout":
        return Outcome(False, "timed out")
    return Outcome(False, f"failed: {verdict.first_failure or verdict.reason}")


class CodeRunner:
    """``workers`` judges (each self-tested on first use), shared by threads; ``run`` judges a batch."""

    def __init__(self, workers: int = 4, timeout_s: float = 3.0, memory_mb: int = 1024) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"num_workers must be a positive int, got {workers!r}")
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout_s!r}")
        self.workers, self.timeout_s, self.memory_mb = workers, float(timeout_s), memory_mb
        self._idle: queue.SimpleQueue[Judge] = queue.SimpleQueue()
        self._made: list[Judge] = []
        self._lock = threading.Lock()

    def _take(self) -> Judge:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            judge = Judge(timeout_s=self.timeout_s, memory_mb=self.memory_mb)
            with self._lock:
                self._made.append(judge)
            self_test(judge)
            return judge

    def one(self, program: str, reference: str) -> Outcome:
        judge = self._take()
        try:
            return _outcome(judge, program, reference)
        finally:
            self._idle.put(judge)

    def run(self, items: Sequence[tuple[str, str]]) -> list[Outcome]:
        """Outcomes of (program, reference) pairs, in order."""
        if len(items) <= 1 or self.workers == 1:
            return [self.one(p, r) for p, r in items]
        with ThreadPoolExecutor(max_workers=min(self.workers, len(items))) as pool:
            return list(pool.map(lambda item: self.one(*item), items))

    def close(self) -> None:
        with self._lock:
            for judge in self._made:
                judge.close()
            self._made.clear()
        self._idle = queue.SimpleQueue()

    def __enter__(self) -> CodeRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_shared: dict[tuple[int, float], CodeRunner] = {}


def shared_runner(workers: int, timeout_s: float) -> CodeRunner:
    """A runner kept for the process (lm-eval scores one document per call: its sandboxes start once)."""
    key = (workers, float(timeout_s))
    runner: Optional[CodeRunner] = _shared.get(key)
    if runner is None:
        runner = _shared[key] = CodeRunner(workers, timeout_s)
    return runner


@atexit.register
def _close_shared() -> None:
    for runner in _shared.values():
        runner.close()
    _shared.clear()
