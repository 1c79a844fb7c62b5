"""Hostile samples: each judged incorrect within the limits, the host untouched."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from passkcore.verify import check_code, extract_program
from passkcore.verify.sandbox import bwrap_available

GOOD = "def add(a, b):\n    return a + b\n"
TESTS = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"


def test_bubblewrap_is_used_here() -> None:
    # make install puts bubblewrap on every machine this project runs on; without it the sandbox
    # would run without network and filesystem isolation (and warn).
    assert bwrap_available()


def test_correct_and_wrong() -> None:
    ok = check_code(GOOD, TESTS, "add")
    assert ok.passed and ok.reason == "passed" and ok.verifier == "sandbox:bwrap"
    bad = check_code("def add(a, b):\n    return a - b\n", TESTS, "add")
    assert not bad.passed and bad.reason == "wrong_answer"


HOSTILE = {
    "infinite loop": ("def add(a, b):\n    while True:\n        pass\n", "timeout"),
    "fork bomb": ("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n" + GOOD, "timeout"),
    "memory bomb": ("x = bytearray(10 ** 10)\n" + GOOD, "memory"),
    "10 GB file": ("f = open('big', 'wb')\nfor _ in range(10 ** 4):\n    f.write(b'x' * 2 ** 20)\n" + GOOD, "crashed"),
    "early exit(0)": ("import sys\nsys.exit(0)\n" + GOOD, "crashed"),
    "os._exit(0)": ("import os\nos._exit(0)\n" + GOOD, "crashed"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_sample_is_contained(name: str) -> None:
    program, reason = HOSTILE[name]
    start = time.monotonic()
    v = check_code(program, TESTS, "add", timeout_s=3, memory_mb=512)
    assert not v.passed and v.reason == reason, v.detail
    assert time.monotonic() - start < 3 + 5  # the wall-clock limit holds, with start-up slack


def test_cannot_touch_the_host(tmp_path: Path) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    victim = tmp_path / "victim"
    program = (f"open({str(tmp_path / 'pwned')!r}, 'w').write('x')\n" + GOOD)
    assert check_code(program, TESTS, "add").reason == "crashed"
    program = f"import os\nos.remove({str(target)!r})\n" + GOOD
    assert check_code(program, TESTS, "add").reason == "crashed"
    program = f"import os\nos.makedirs({str(victim)!r})\n" + GOOD
    assert check_code(program, TESTS, "add").reason == "crashed"
    assert target.read_text() == "keep me" and not (tmp_path / "pwned").exists() and not victim.exists()


def test_no_network_no_parent_kill_no_environment() -> None:
    socket = "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)\n" + GOOD
    assert check_code(socket, TESTS, "add").reason == "crashed"
    kill = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n" + GOOD
    check_code(kill, TESTS, "add")
    assert os.getpid() > 0  # this process is alive
    os.environ["PASSK_TEST_SECRET"] = "hunter2"
    try:
        leak = "import os\nassert 'PASSK_TEST_SECRET' not in os.environ\nassert os.getuid() == 65534\n" + GOOD
        assert check_code(leak, TESTS, "add").passed
    finally:
        del os.environ["PASSK_TEST_SECRET"]


def test_extract_program() -> None:
    prompt = "from typing import List\n\ndef add(a: int, b: int) -> int:\n    \"\"\"Add.\"\"\"\n"
    fenced = "Sure!\n```python\ndef add(a: int, b: int) -> int:\n    return a + b\n```\nDone."
    program = extract_program(fenced, prompt, "add")
    assert program is not None and program.startswith("from typing import List\n") and "return a + b" in program
    body_only = "    return a + b\n"
    assert extract_program(body_only, prompt, "add") == prompt + body_only
    assert extract_program("   ", prompt, "add") is None


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="identifier"):
        check_code(GOOD, TESTS, "add; import os")
    with pytest.raises(TypeError):
        check_code(None, TESTS, "add")  # type: ignore[arg-type]
