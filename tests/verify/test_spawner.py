"""passkcore.verify.spawner: sandboxes outlive the thread that asked for them, and die with the process.

bubblewrap's --die-with-parent is PR_SET_PDEATHSIG, which fires when the *thread* that forked bwrap
exits; before the spawner, a judge whose sandboxes a short-lived thread started failed its next
program ("crash: None", "crash: the tests' process ended").
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

from passkcore.verify.judge import Judge
from passkcore.verify.mounts import sandbox_python
from passkcore.verify.sandbox import bwrap_base
from passkcore.verify.spawner import popen

_PROGRAM = "def add(a, b):\n    return a + b\n"
_TESTS = "def check(candidate):\n    assert candidate(2, 3) == 5\n"


def _in_thread(fn) -> None:  # noqa: ANN001 - any callable
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def test_judge_started_in_a_thread_that_ended_still_judges() -> None:
    with Judge(timeout_s=5.0) as judge:
        first: list = []
        _in_thread(lambda: first.append(judge.check(_PROGRAM, _TESTS, "add")))  # starts both sandboxes
        first.append(judge.function_io(_PROGRAM, "add", [[1, 2]], [3]))
        time.sleep(0.2)  # the death signal is asynchronous
        later = [judge.check(_PROGRAM, _TESTS, "add"), judge.function_io(_PROGRAM, "add", [[1, 2]], [3]),
                 judge.stdio("print(sum(map(int, input().split())))", ["1 2\n"], ["3\n"])]
    assert [v.passed for v in first + later] == [True] * 5, [v.first_failure for v in first + later]


def test_popen_runs_on_a_long_lived_thread_and_raises_the_callers_errors() -> None:
    proc = popen([sys.executable, "-c", "import os; print(os.getppid())"], stdout=subprocess.PIPE)
    out, _ = proc.communicate(timeout=30)
    assert int(out) == os.getpid()
    threads = {t.name for t in threading.enumerate()}
    assert "passk-spawner" in threads
    try:
        popen(["/nonexistent/passk-no-such-program"])
    except FileNotFoundError:
        pass
    else:
        raise AssertionError("a program that cannot start must raise in the caller")


def test_popen_from_a_thread_that_ended_keeps_a_die_with_parent_child() -> None:
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> None:  # waits for the program inside: bwrap has set its death signal by then
        procs.append(popen([*bwrap_base(), sandbox_python(), "-c", "print('up', flush=True); input()"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE))
        assert procs[0].stdout is not None and procs[0].stdout.readline() == b"up\n"

    _in_thread(start)
    time.sleep(0.5)
    try:
        assert procs[0].poll() is None, "bwrap died with the thread that asked for it"
    finally:
        procs[0].kill()
        procs[0].communicate()


_HOST = textwrap.dedent("""
    import threading, time
    from passkcore.verify.judge import Judge
    judge = Judge(timeout_s=5.0)
    program, tests = "def f():\\n    return 1\\n", "def check(c):\\n    assert c() == 1\\n"
    t = threading.Thread(target=lambda: print(judge.check(program, tests, "f").passed, flush=True))
    t.start(); t.join()
    time.sleep(60)
""")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _children(pid: int) -> list[int]:
    out = []
    for task in os.listdir(f"/proc/{pid}/task") if os.path.isdir(f"/proc/{pid}/task") else []:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out += [int(c) for c in fh.read().split()]
        except FileNotFoundError:
            pass
    return out


def _descendants(pid: int) -> list[int]:
    out = []
    for child in _children(pid):
        out += [child, *_descendants(child)]
    return out


def test_sandboxes_die_when_the_host_process_is_killed() -> None:
    host = subprocess.Popen([sys.executable, "-c", _HOST], stdout=subprocess.PIPE, text=True)
    tree: list[int] = []
    try:
        assert host.stdout is not None
        assert host.stdout.readline() == "True\n"
        time.sleep(0.2)  # the death signal is asynchronous
        tree = _descendants(host.pid)  # a live sandbox: bwrap, its init in the pid namespace, the zygote
        assert len(tree) >= 6, f"the sandboxes died with their thread: {tree}"
    finally:
        host.send_signal(signal.SIGKILL)
        host.wait()
        host.stdout.close()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in tree) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in tree if _alive(p)], "sandbox processes outlived the killed host"
