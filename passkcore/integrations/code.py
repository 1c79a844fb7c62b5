"""code_eval-style references run in passkcore's sandbox: the shared engine of the evaluate and lm-eval
integrations.

HF evaluate's ``code_eval`` (and lm-eval's humaneval/mbpp tasks through it) ``exec``s the candidate
program followed by the reference test code in one process, unsandboxed. Here the candidate runs in the
candidate sandbox and the reference in the harness sandbox (passkcore.verify.judge). Every name the
reference uses without defining it (read with ``ast``; builtins excepted) is bound in the reference's
namespace to a proxy that calls the candidate's global of that name across the sandbox boundary, looked
up at call time: whatever bound it there (``def``, ``lambda``, ``add = plus``, an import under that name,
``exec`` or ``globals()`` at run time) is what the tests call, with plain data both ways. A name the
candidate never binds fails that completion (its result names the name) and ends its tests at once, so
no ``except`` in them turns it into a pass. The candidate never sees the tests, and nothing it prints,
patches or returns (other than the values the tests check) decides its verdict.

Every completion gets an ``Outcome``, whatever it does (syntax error, crash, timeout, killing its own
sandbox); only a sandbox that cannot run at all (VerifierUnavailable) stops a batch.

Limits, by design: the candidate's globals are callable from the references, only with plain-data
arguments and results (a reference reading a candidate's constant or instance fails); a free name that is
a standard-library module used only as ``math.isclose`` is that module, imported in the harness (as the
candidate's ``import math`` made it in code_eval); names of Python builtins are never bound (a
candidate's ``abs`` must not replace the tests' ``abs``).
"""

from __future__ import annotations

import ast
import atexit
import builtins
import functools
import queue
import re
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Optional

from passkcore.verify.code import self_test
from passkcore.verify.judge import IncompleteTests, Judge, VerifierUnavailable

DISPATCH = "__passk_call__"
# The dispatcher's NameError text for a name the candidate does not bind when the tests call it.
UNBOUND = "__passk_unbound__:"
# Appended to the candidate: the one entry point the candidate sandbox serves, calling a global by name at
# call time (the namespace captured once, so a candidate's own `globals` cannot misdirect it).
_DISPATCHER = f"""

def __passk_dispatcher(__passk_scope):
    def {DISPATCH}(__passk_name, /, *args, **kwargs):
        if __passk_name not in __passk_scope:
            raise NameError({UNBOUND!r} + __passk_name)
        return __passk_scope[__passk_name](*args, **kwargs)
    return {DISPATCH}


{DISPATCH} = __passk_dispatcher(globals())
"""
_HARNESS = """
class __passk_Unbound(BaseException):
    pass


def __passk_bind(candidate, name):
    unbound = ("crash: NameError: " + {unbound!r} + name)[:200]

    def call(*args, **kwargs):
        try:
            return candidate(name, *args, **kwargs)
        except Exception as exc:
            if str(exc).startswith(unbound):
                # A missing function is the completion's failure: a BaseException ends check() here,
                # past any `except Exception` in the tests, and the proxy's failure is what is reported.
                candidate.failure = "NameError: name %r is not defined (the program never binds it)" % name
                raise __passk_Unbound(name) from None
            raise

    call.__name__ = call.__qualname__ = name
    return call


def check(__passk_candidate):
    scope = {{"__name__": "__passk_reference__"}}
    for name in {modules!r}:
        try:
            scope[name] = __import__(name)
        except ImportError:
            pass
    for name in {names!r}:
        scope[name] = __passk_bind(__passk_candidate, name)
    exec(compile({reference!r}, "reference.py", "exec"), scope)
"""
_BUILTINS = frozenset(dir(builtins))


@dataclass(frozen=True)
class Outcome:
    """One program's verdict in code_eval's terms: ``result`` is ``passed``, ``timed out`` or ``failed: ...``."""

    passed: bool
    result: str


def _bound(tree: ast.AST) -> set[str]:
    """Every name ``tree`` binds anywhere (defs, classes, imports, assignments, arguments, handlers)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
    return names


def reference_names(reference: str) -> tuple[list[str], list[str]]:
    """The names ``reference`` uses without binding them, builtins left out: (those the candidate
    answers for, standard-library modules used only as ``module.attribute``). Read with ``ast``, never
    run; a reference that does not parse uses none (the harness then reports that it does not load)."""
    try:
        tree = ast.parse(reference)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # ValueError: a NUL byte
        return [], []
    bound = _bound(tree)
    loads: dict[str, int] = {}
    as_base: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            loads[node.id] = loads.get(node.id, 0) + 1
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            as_base[node.value.id] = as_base.get(node.value.id, 0) + 1
    free = [n for n in loads if n not in bound and n not in _BUILTINS and not n.startswith("__passk")]
    modules = [n for n in free if n in sys.stdlib_module_names and as_base.get(n) == loads[n]]
    return [n for n in free if n not in modules], modules


@functools.lru_cache(maxsize=64)
def harness_tests(reference: str) -> str:
    """The harness sandbox's ``check(candidate)``: runs ``reference`` with its free names bound to the
    candidate's globals of those names (cached: a problem's n completions share one reference)."""
    names, modules = reference_names(reference)
    return _HARNESS.format(unbound=UNBOUND, names=names, modules=modules, reference=reference)


def _outcome(judge: Judge, program: str, reference: str) -> Outcome:
    try:
        verdict = judge.check(program + _DISPATCHER, harness_tests(reference), DISPATCH)
    except IncompleteTests as exc:  # the reference's own NameError (a name it binds only on some paths)
        name = re.search(r"'([^']*)'", str(exc))
        return Outcome(False, f"failed: NameError: name {name.group(1) if name else '?'!r} is not defined in the tests")
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

    def _discard(self, judge: Judge) -> None:
        with self._lock:
            if judge in self._made:
                self._made.remove(judge)
        judge.close()

    def one(self, program: str, reference: str) -> Outcome:
        """The program's outcome; never raises for what the program does. VerifierUnavailable (the
        sandbox cannot start at all) is the verifier's error, never a verdict, and does raise."""
        judge = self._take()
        try:
            outcome = _outcome(judge, program, reference)
        except VerifierUnavailable:
            self._discard(judge)
            raise
        except Exception as exc:  # noqa: BLE001 - a judge left in an unknown state is replaced, the row still gets its verdict
            self._discard(judge)
            return Outcome(False, f"failed: verifier error: {type(exc).__name__}: {exc}"[:300])
        self._idle.put(judge)
        return outcome

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
