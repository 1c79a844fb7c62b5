"""A verifier that cannot run is an error, never verdicts; the sandbox runs wherever Python lives."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

import passkcore.verify.code as code_module
import passkcore.verify.judge as judge_module
from passkcore.problems import Problem
from passkcore.verify import VerifierUnavailable, check_code, verify_rows

PROBLEMS = {"p": Problem("p", "def add(a, b):\n", "code", entry_point="add",
                         tests="def check(candidate):\n    assert candidate(1, 2) == 3\n")}
ROWS = [{"problem_id": "p", "response": "def add(a, b):\n    return a + b\n"}]


def test_bwrap_refused_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(judge_module, "bwrap_base", lambda extra=(): ["bwrap", "--no-such-option"])
    with pytest.raises(VerifierUnavailable, match="did not start.*bwrap"):
        verify_rows(ROWS, PROBLEMS, workers=1)
    with pytest.raises(VerifierUnavailable):
        check_code("def add(a, b):\n    return a + b\n", PROBLEMS["p"].tests or "", "add")


def test_invisible_interpreter_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", "/nonexistent/bin/python3")
    with pytest.raises(VerifierUnavailable, match="No such file"):
        verify_rows(ROWS, PROBLEMS, workers=1)


def test_failed_self_test_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # A sandbox that passes everything (here: a "good" program that is wrong) must not judge a batch.
    monkeypatch.setattr(code_module, "_GOOD", code_module._WRONG)
    with pytest.raises(VerifierUnavailable, match="self-test"):
        verify_rows(ROWS, PROBLEMS, workers=1)


GOOD_ADD = "def add(a, b):\n    return a + b\n"
ADD_TESTS = PROBLEMS["p"].tests or ""


def test_self_test_gets_its_own_limit() -> None:
    # verl gives a program 1-2 s; the self-test's two tiny programs must not fail on a loaded machine
    # for that. 1 ms would time out any program, so the self-test passes only with its own limit.
    with judge_module.Judge(timeout_s=0.001) as judge:
        code_module.self_test(judge)
        assert judge.timeout_s == 0.001
        slow = "import time\n\ndef add(a, b):\n    time.sleep(0.3)\n    return a + b\n"
        assert judge.check(slow, ADD_TESTS, "add").reason == "timeout"  # the judge's own limit is back


def test_sandbox_start_is_not_the_programs_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # A sandbox whose processes take 1.5 s to fork (a loaded machine, a zygote restarting) must not
    # turn a program that runs in milliseconds into a timeout under a 1 s limit.
    forked = judge_module.Zygote.forked

    def slow_forked(self: judge_module.Zygote) -> None:
        time.sleep(1.5)
        forked(self)

    monkeypatch.setattr(judge_module.Zygote, "forked", slow_forked)
    with judge_module.Judge(timeout_s=1.0) as judge:
        verdict = judge.check(GOOD_ADD, ADD_TESTS, "add")
    assert verdict.passed, verdict


def test_math_rows_need_no_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(judge_module, "bwrap_base", lambda extra=(): ["bwrap", "--no-such-option"])
    problems = {"m": Problem("m", "1+1?", "math", answer="2")}
    assert verify_rows([{"problem_id": "m", "response": "\\boxed{2}"}], problems, workers=1)[0].passed


SCRIPT = """
import json, site, sys
site.addsitedir({site_packages!r})
from passkcore.problems import Problem
from passkcore.verify import verify_rows
assert sys.prefix.startswith("/tmp/"), sys.prefix
problems = {{"p": Problem("p", "def add(a, b):\\n", "code", entry_point="add",
                         tests="def check(candidate):\\n    assert candidate(1, 2) == 3\\n")}}
rows = [{{"problem_id": "p", "response": "def add(a, b):\\n    return a + b\\n"}},
        {{"problem_id": "p", "response": "def add(a, b):\\n    return a - b\\n"}}]
print(json.dumps([v.reason for v in verify_rows(rows, problems, workers=1)]))
"""


@pytest.mark.slow
def test_interpreter_in_a_venv_under_tmp() -> None:
    """bwrap's private /tmp used to hide a venv there: every sample was judged crashed."""
    with tempfile.TemporaryDirectory(prefix="passk-venv-", dir="/tmp") as root:
        venv = Path(root) / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
        script = textwrap.dedent(SCRIPT).format(site_packages=sysconfig.get_paths()["purelib"])
        out = subprocess.run([str(venv / "bin" / "python"), "-c", script], capture_output=True, text=True,
                             timeout=300, cwd=root)
        assert out.returncode == 0, out.stderr[-3000:]
        assert json.loads(out.stdout.strip().splitlines()[-1]) == ["passed", "wrong_answer"]
