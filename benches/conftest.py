from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from passkcore.bench import best_time


def own_time(benchmark: Any) -> float:
    """The fastest round pytest-benchmark measured for our side of the comparison."""
    if benchmark.disabled:
        pytest.skip("ratios need timings; run with benchmarks enabled (make bench)")
    return float(benchmark.stats.stats.min)


def peer_time(fn: Callable[[], Any], repeats: int = 5) -> float:
    """The peer's best of `repeats` runs, measured in the same process right after ours."""
    return best_time(fn, min_seconds=0.0, max_repeats=repeats)


ROOT = Path(__file__).resolve().parent.parent
_PEAK = ("\nprint(json.dumps({'s': time.perf_counter() - start, 'rss': next(int(line.split()[1]) * 1024 for line in "
         "open('/proc/self/status') if line.startswith('VmHWM'))}))\n")


def measure_child(code: str, *args: str, timeout: float = 1800) -> dict[str, float]:
    """Wall seconds and peak RSS (bytes) of ``code`` run in a fresh ``python -c`` with ``args``. The peak
    is the child's own VmHWM: its ``ru_maxrss`` would start at the parent's peak (the kernel folds the
    spawning image's high-water mark into it at exec: a 2,000-sample run measured 167 MiB, pytest's)."""
    wrapped = "import json, sys, time\nstart = time.perf_counter()\n" + code + _PEAK
    out = subprocess.run([sys.executable, "-c", wrapped, *args], capture_output=True, text=True, cwd=ROOT,
                         timeout=timeout, env={**os.environ, "VLLM_LOGGING_LEVEL": "ERROR"})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def tree_rss(proc: psutil.Process) -> int:
    """RSS of a process and all its descendants (vLLM's engine core may be a child process)."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def measure_child_tree(code: str, *args: str, timeout: float = 1800, every_s: float = 0.05) -> dict[str, float]:
    """``measure_child``, plus ``tree_rss``: the largest RSS of the child and all its descendants,
    sampled every ``every_s`` seconds (a process tree has no common high-water mark)."""
    wrapped = "import json, sys, time\nstart = time.perf_counter()\n" + code + _PEAK
    proc = subprocess.Popen([sys.executable, "-c", wrapped, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env={**os.environ, "VLLM_LOGGING_LEVEL": "ERROR"})
    watched, peak, deadline = psutil.Process(proc.pid), 0, time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        peak = max(peak, tree_rss(watched))
        time.sleep(every_s)
    if proc.poll() is None:
        proc.kill()
    stdout, stderr = proc.communicate()
    assert proc.returncode == 0, stderr[-3000:]
    return {**json.loads(stdout.strip().splitlines()[-1]), "tree_rss": float(peak)}


RATIOS: list[tuple[str, dict[str, Any]]] = []


@pytest.fixture(autouse=True)
def _collect_ratios(request: pytest.FixtureRequest) -> Any:
    yield
    bench = request.node.funcargs.get("benchmark")
    if bench is not None and not bench.disabled and bench.extra_info:
        RATIOS.append((request.node.name, dict(bench.extra_info)))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not RATIOS:
        return
    terminalreporter.section("ratios against the peer tools (same run)")
    for name, info in RATIOS:
        cells = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items())
        terminalreporter.write_line(f"{name}: {cells}")
