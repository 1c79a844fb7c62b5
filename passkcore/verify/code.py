"""Code samples: extract the program from a response; judge it (passkcore.verify.judge) in the sandbox."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

from passkcore.problems import Problem
from passkcore.verify.judge import Judge, VerifierUnavailable
from passkcore.verify.verdict import Verdict

_BLOCK = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)(?:```|\Z)", re.S)

# The self-test every batch starts with: a sandbox that passes the first and fails the second works.
# The known-good programs and the tests also look for a sentinel file the parent placed on the host
# (SENTINEL is replaced by its path): a sandbox that shows it would show the host's tests and answers.
_SELF_TEST_TESTS = ("import os\n\ndef check(candidate):\n    assert not os.path.exists(SENTINEL)\n"
                    "    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n")
_HARNESS_SEES_HOST = "wrong_answer: assertion failed at tests line 4"
_SELF_TEST = Problem("passk-self-test", "def add(a, b):\n", "code", entry_point="add", tests=_SELF_TEST_TESTS)
# The self-test's programs get at least this long, whatever the judge's own limit: verl's reward
# configs give a program 1-2 s, which a loaded machine can spend before two tiny programs are judged,
# and a self-test that times out stops the whole batch as VerifierUnavailable.
SELF_TEST_TIMEOUT_S = 10.0
_SELF_TEST_STDIO = Problem("passk-self-test-stdio", "", "code_stdio", inputs=["2 3\n"], outputs=["5\n"])
_GOOD = ("import os\nIMPORTS\ndef add(a, b):\n    if os.path.exists(SENTINEL):\n        raise RuntimeError('host visible')\n"
         "    return a + b\n",
         "import os\na, b = map(int, input().split())\nprint('host visible' if os.path.exists(SENTINEL) else a + b)\n")
_WRONG = ("def add(a, b):\n    return a - b\n", "a, b = map(int, input().split())\nprint(a - b)\n")


def extract_program(response: str, prompt: str, entry_point: str) -> Optional[str]:
    """The candidate program: the code block that defines ``entry_point`` (with the prompt's imports
    in front), else the prompt followed by the first block or the raw response as the function body.
    A dotted ``Class.method`` entry (LiveCodeBench's ``Solution.f``) is found by its method's ``def``."""
    blocks = _BLOCK.findall(response)
    header = "".join(line + "\n" for line in prompt.splitlines() if line.startswith(("import ", "from ")))
    if "." in entry_point:
        # LiveCodeBench's starter code annotates with List[...] without importing it; its own harness
        # runs every program after `from typing import *`, so a correct solution would crash here.
        header = "from typing import *\n" + header
    entry_point = entry_point.rsplit(".", 1)[-1]
    for block in blocks:
        if re.search(rf"^\s*def\s+{re.escape(entry_point)}\s*\(", block, re.M):
            return header + block
    body = blocks[0] if blocks else response
    if not body.strip():
        return None
    if re.search(rf"^\s*def\s+{re.escape(entry_point)}\s*\(", body, re.M):
        return header + body
    return prompt + body


def extract_script(response: str) -> Optional[str]:
    """A stdin/stdout program: the first code block, else the whole response."""
    blocks = _BLOCK.findall(response)
    body = blocks[0] if blocks else response
    return body if body.strip() else None


def check_code(program: str, tests: str, entry_point: str, *, timeout_s: float = 10.0, memory_mb: int = 1024,
               prompt: str = "", allow_packages: Sequence[str] = ()) -> Verdict:
    """Runs ``program`` in the candidate sandbox and ``prompt`` + ``tests`` + ``check(entry_point)``
    (HumanEval's convention) in the harness sandbox; both see the standard library and the
    ``allow_packages`` only. Never executes anything in the calling process; VerifierUnavailable when
    the sandbox cannot start; IncompleteTests (a ValueError) when the tests call a name that neither
    they nor ``prompt`` define (HumanEval/32's ``poly``: pass the prompt)."""
    for name, value in (("program", program), ("tests", tests), ("entry_point", entry_point), ("prompt", prompt)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string")
    if not entry_point.isidentifier():
        raise ValueError(f"entry_point must be a Python identifier, got {entry_point!r}")
    with Judge(timeout_s=timeout_s, memory_mb=memory_mb, allow_packages=allow_packages) as judge:
        return judge.check(program, tests, entry_point, prompt)


def program_for(problem: Problem, response: str) -> Optional[str]:
    if problem.kind == "code_stdio":
        return extract_script(response)
    assert problem.entry_point is not None
    return extract_program(response, problem.prompt, problem.entry_point)


def sentinel_folder() -> str:
    """A folder outside /tmp that every sandbox would show if it showed the host (/var/tmp, else the
    working directory), world-readable: the candidate runs as nobody."""
    for folder in ("/var/tmp", os.getcwd()):
        if os.path.isdir(folder) and os.access(folder, os.W_OK) and not folder.startswith("/tmp"):
            return folder
    raise VerifierUnavailable("nowhere outside /tmp to place the sandbox's isolation sentinel (/var/tmp is not writable)")


@contextlib.contextmanager
def sentinel() -> Iterator[str]:
    """A file the parent places on the host, outside /tmp, readable by everyone; removed after."""
    folder = tempfile.mkdtemp(prefix="passk-sentinel-", dir=sentinel_folder())
    try:
        os.chmod(folder, 0o755)
        path = os.path.join(folder, "answers.jsonl")
        with open(path, "w") as fh:
            fh.write('{"expected": 5}\n')
        os.chmod(path, 0o644)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def self_test(judge: Judge) -> None:
    """VerifierUnavailable unless the judge passes known-good programs, fails known-wrong ones, and
    neither sandbox sees a sentinel file placed on the host; the known-good program also imports the
    allowlisted packages (an allowlist that does not import stops here, not as crashed samples)."""
    imports = "".join(f"import {m}\n" for m in judge.packages.modules)
    limit = judge.timeout_s
    judge.timeout_s = max(limit, SELF_TEST_TIMEOUT_S)
    try:
        _self_test(judge, imports)
    finally:
        judge.timeout_s = limit


def _self_test(judge: Judge, imports: str) -> None:
    with sentinel() as path:
        def fill(source: str) -> str:
            return source.replace("SENTINEL", repr(path)).replace("IMPORTS\n", imports)

        checked = Problem(_SELF_TEST.id, _SELF_TEST.prompt, "code", entry_point="add", tests=fill(_SELF_TEST_TESTS))
        for problem, good, wrong in ((checked, _GOOD[0], _WRONG[0]), (_SELF_TEST_STDIO, _GOOD[1], _WRONG[1])):
            ok, bad = judge.judge(problem, fill(good)), judge.judge(problem, wrong)
            failure = str(ok.first_failure)
            if "host visible" in failure or failure == _HARNESS_SEES_HOST:
                side = "harness" if failure == _HARNESS_SEES_HOST else "candidate"
                raise VerifierUnavailable(
                    f"sandbox self-test ({problem.kind}): the {side} sandbox can read {path}, a file placed on the "
                    "host: its isolation is broken and it could read tests and answers")
            if not ok.passed or bad.passed:
                raise VerifierUnavailable(
                    f"sandbox self-test ({problem.kind}): a known-good program was judged {ok.reason} "
                    f"({ok.first_failure}) and a known-wrong one {bad.reason}")


def verify_code_rows(rows: Sequence[Mapping[str, Any]], problems: Sequence[Problem], *, workers: int,
                     timeout_s: float, memory_mb: int, progress: Optional[Callable[[int], None]] = None,
                     allow_packages: Sequence[str] = ()) -> list[Verdict]:
    """Verdicts for code responses (``rows[i]["response"]`` of ``problems[i]``), in order: one judge per
    worker, each self-tested first; VerifierUnavailable (and no verdicts) if the sandbox cannot run or
    shows the host; the programs see the standard library and ``allow_packages`` only."""
    if not rows:
        return []
    workers = max(1, min(workers, len(rows)))
    judges: queue.SimpleQueue[Judge] = queue.SimpleQueue()
    made: list[Judge] = []
    try:
        for _ in range(workers):
            made.append(Judge(timeout_s=timeout_s, memory_mb=memory_mb, allow_packages=allow_packages))
            self_test(made[-1])
            judges.put(made[-1])

        def one(i: int) -> Verdict:
            problem = problems[i]
            program = program_for(problem, str(rows[i]["response"]))
            if program is None:
                return Verdict(False, "no_answer", None, made[0].verifier)
            judge = judges.get()
            try:
                return judge.judge(problem, program)
            finally:
                judges.put(judge)

        out = []
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for v in pool.map(one, range(len(rows))):
                out.append(v)
                if progress:
                    progress(1)
        return out
    finally:
        for judge in made:
            judge.close()
