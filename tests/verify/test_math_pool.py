"""The math pool against hostile answers: limits hold per sample, and one sample's fate is its own."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from passkcore.verify import check_math
from passkcore.verify.math_pool import MIN_MEMORY_MB, close_idle_workers, verify_math

LIMIT_S = 1.5
MEMORY_MB = 1024

# Each is an answer to a problem whose answer is 1. The first two stall math-verify past any limit
# (measured: > 15 s each); the rest are slow, huge or odd but may also finish.
HOSTILE = {
    "integral": "\\boxed{\\int_0^\\infty e^{-x^{2}} \\sin(x^{99}) dx}",
    "tower": "\\boxed{9^{9^{9^{9}}}}",
    "power": "\\boxed{10^{10^{8}}}",
    "factorials": "\\boxed{99!!!!}",
    "nesting": "\\boxed{" + "\\frac{1}{" * 300 + "2" + "}" * 300 + "}",
    "parens": "\\boxed{" + "(" * 2000 + "1" + ")" * 2000 + "}",
    "long_sum": "\\boxed{" + "1+" * 100_000 + "1}",  # 200,000 characters
    "long_number": "The answer is " + "9" * 200_000,
    "matrix": "\\boxed{\\begin{pmatrix}" + "\\\\".join("&".join(["x"] * 30) for _ in range(30)) + "\\end{pmatrix}}",
    "series": "\\boxed{\\sum_{n=1}^{\\infty} \\frac{(-1)^n n!}{n^n}}",
    "lookalike_fullwidth": "\\boxed{\uff11}",
    "lookalike_cyrillic": "\\boxed{\u0406}",
}
STALLING = ("integral", "tower")


def _killed_after(detail: str) -> float:
    match = re.search(r"killed after ([0-9.]+) s", detail)
    assert match, detail
    return float(match.group(1))


@contextmanager
def _watch_workers() -> Iterator[dict[str, int]]:
    """Polls this process's math workers (the fork server's children) every 20 ms: the highest peak
    RSS (VmHWM) and the address-space limit they run under."""
    seen = {"peak_rss": 0, "workers": 0, "rlimit_as": 0}
    stop = threading.Event()

    def poll() -> None:
        me = psutil.Process()
        while not stop.is_set():
            for child in me.children(recursive=True):
                try:
                    if child.ppid() == me.pid:
                        continue  # the fork server itself, not a worker
                    with open(f"/proc/{child.pid}/status") as fh:
                        hwm = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM"))
                    seen["peak_rss"] = max(seen["peak_rss"], hwm * 1024)
                    limit = child.rlimit(psutil.RLIMIT_AS)[0]
                    if limit != psutil.RLIM_INFINITY:  # not the instant between fork and setrlimit
                        seen["rlimit_as"] = max(seen["rlimit_as"], limit)
                    seen["workers"] += 1
                except (psutil.Error, OSError, StopIteration):
                    pass
            stop.wait(0.02)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join()


@pytest.mark.slow
def test_hostile_answers_do_not_change_correct_ones() -> None:
    correct = [f"So the answer is \\boxed{{{1}}}.", "1", "We get $\\frac{2}{2}$, that is \\boxed{1}"]
    items: list[tuple[str, str]] = []
    where: dict[str, int] = {}
    for name, response in HOSTILE.items():
        items += [(correct[len(items) % 3], "1")] * 3
        where[name] = len(items)
        items.append((response, "1"))
    items += [(correct[0], "1")] * 3
    close_idle_workers()  # workers kept idle by earlier tests run under their own limits: watch only ours
    start = time.monotonic()
    with _watch_workers() as seen:
        verdicts = verify_math(items, workers=2, timeout_s=LIMIT_S, memory_mb=MEMORY_MB)
    elapsed = time.monotonic() - start
    hostile_rows = set(where.values())
    for i, v in enumerate(verdicts):
        if i not in hostile_rows:
            assert v.reason == "passed", (i, v)
    for name, i in where.items():
        v = verdicts[i]
        assert not v.passed, (name, v)
        if v.reason == "timeout":
            assert _killed_after(v.detail) <= 2 * LIMIT_S, (name, v.detail)
    for name in STALLING:
        assert verdicts[where[name]].reason in ("timeout", "memory"), (name, verdicts[where[name]])
    # Bounded: every sample at most its limit, on 2 workers, plus start-up and the correct answers.
    assert elapsed < len(HOSTILE) * LIMIT_S / 2 + LIMIT_S + 20, elapsed
    assert seen["workers"] > 0
    assert 0 < seen["rlimit_as"] <= MEMORY_MB * 2**20  # every worker seen ran under the limit
    assert 0 < seen["peak_rss"] <= MEMORY_MB * 2**20, seen


@pytest.mark.slow
def test_killed_worker_reruns_its_queued_samples() -> None:
    """One worker: the stalled sample's worker also held the next sample, sent ahead; that sample is
    rerun on a fresh worker, and every verdict is the one check_math gives alone, in row order."""
    items = [("\\boxed{1}", "1"), (HOSTILE["tower"], "1"), ("\\boxed{2}", "2"), ("\\boxed{3}", "4"), ("x", "1")]
    verdicts = verify_math(items, workers=1, timeout_s=1.0, memory_mb=MEMORY_MB)
    assert [v.reason for v in verdicts] == ["passed", "timeout", "passed", "wrong_answer", "no_answer"]
    alone = [check_math(r, g) for r, g in items[2:]]
    assert verdicts[2:] == alone
    assert _killed_after(verdicts[1].detail) <= 2.0


@pytest.mark.slow
def test_worker_killed_from_outside_is_memory_for_its_sample_only() -> None:
    """The kernel's OOM killer sends SIGKILL: simulated here on the worker stalled on the integral."""
    items = [(HOSTILE["integral"], "1"), ("\\boxed{5}", "5"), ("\\boxed{7}", "7")]
    close_idle_workers()  # the call's one worker is then the fork server's only child

    def kill_the_busy_worker() -> None:
        deadline = time.monotonic() + 25.0
        while time.monotonic() < deadline:
            for child in psutil.Process().children(recursive=True):
                try:
                    busy = child.ppid() != os.getpid() and sum(child.cpu_times()[:2]) > 0.5
                except psutil.Error:
                    continue
                if busy:  # a worker that has computed for 0.5 s: the one on the integral
                    os.kill(child.pid, signal.SIGKILL)
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_busy_worker)
    killer.start()
    verdicts = verify_math(items, workers=1, timeout_s=30.0, memory_mb=MEMORY_MB)
    killer.join()
    assert [v.reason for v in verdicts] == ["memory", "passed", "passed"]
    assert "worker died" in verdicts[0].detail


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="memory_mb=100"):
        verify_math([("1", "1")], workers=1, timeout_s=1.0, memory_mb=100)
    assert MIN_MEMORY_MB <= MEMORY_MB
    with pytest.raises(ValueError, match="math_extract"):
        verify_math([("1", "1")], workers=1, timeout_s=1.0, memory_mb=MEMORY_MB, extract="last")
    with pytest.raises(ValueError, match="timeout_s"):
        verify_math([("1", "1")], workers=1, timeout_s=0, memory_mb=MEMORY_MB)
    assert verify_math([], workers=1, timeout_s=1.0, memory_mb=MEMORY_MB) == []


def test_policy_and_answer_key_reach_the_verdicts() -> None:
    items = [("so it is 1/2", "0.5"), ("\\boxed{\\frac12}", "0.5"), ("so it is 1/2", "0.5")]
    fallback = verify_math(items, workers=1, timeout_s=10.0, memory_mb=MEMORY_MB)
    boxed = verify_math(items, workers=1, timeout_s=10.0, memory_mb=MEMORY_MB, extract="boxed")
    assert [v.reason for v in fallback] == ["passed", "passed", "passed"]
    assert [v.reason for v in boxed] == ["no_answer", "passed", "no_answer"]
    assert {v.extract_policy for v in fallback} == {"fallback"} and {v.extract_policy for v in boxed} == {"boxed"}
    assert fallback[0].answer_key == fallback[1].answer_key == "1/2"


# A plain script, no `if __name__ == "__main__":` guard: it counts its own runs in a file next to it.
UNGUARDED = """\
import json, pathlib
runs = pathlib.Path(__file__).with_name("runs")
runs.write_text(runs.read_text() + "x" if runs.exists() else "x")
from passkcore.problems import Problem
from passkcore.verify import verify_rows
problems = {"p": Problem(id="p", prompt="1+1?", kind="math", answer="2")}
rows = [{"problem_id": "p", "response": r} for r in ("\\\\boxed{2}", "3", "\\\\boxed{9^{9^{9^{9}}}}", "so it is 2")]
verdicts = verify_rows(rows, problems, workers=2, timeout_s=1.0, memory_mb=1024)
print(json.dumps([v.reason for v in verdicts]))
"""


def test_verify_rows_from_a_script_without_a_main_guard(tmp_path: Path) -> None:
    """Math workers never import the caller's main module: the script runs once, its stalled answer is
    killed at its limit, and the others get their verdicts."""
    script = tmp_path / "score.py"
    script.write_text(UNGUARDED)
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == ["passed", "wrong_answer", "timeout", "passed"]
    assert (tmp_path / "runs").read_text() == "x"  # the script ran once: no worker re-imported it


def test_calls_from_threads_at_once_share_one_server() -> None:
    """Four threads verify at once (as a reward function called from a thread pool would): each gets
    the verdicts it gets alone, from workers forked by the one server this process has."""
    items = [(f"\\boxed{{{i % 3}}}", str(i % 2)) for i in range(60)]
    alone = [v.reason for v in verify_math(items, workers=1, timeout_s=10.0, memory_mb=MEMORY_MB)]
    out: list[list[str]] = [[] for _ in range(4)]

    def run(slot: int) -> None:
        out[slot] = [v.reason for v in verify_math(items, workers=2, timeout_s=10.0, memory_mb=MEMORY_MB)]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == [alone] * 4 and set(alone) == {"passed", "wrong_answer"}
    servers = [c for c in psutil.Process().children() if "math_server" in _cmdline(c)]
    assert len(servers) == 1


def _cmdline(proc: psutil.Process) -> str:
    """A child's command line; empty for a zombie or one that just ended (an earlier test's child not
    reaped yet: `cmdline()` raised ZombieProcess for one in a fresh-clone run)."""
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""
