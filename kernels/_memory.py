"""Peak resident memory of a call, for the benchmarks: Linux resets VmHWM when 5 is written to
/proc/self/clear_refs, so the high-water mark after the call minus the RSS before it is the call's
peak extra memory (torch's CPU allocations are invisible to tracemalloc)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_extra_bytes(fn: Callable[[], Any]) -> tuple[int, Any]:
    """(peak RSS during fn above the RSS before it, fn's result)."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    before = _status_kib("VmRSS")
    result = fn()
    return (_status_kib("VmHWM") - before) * 1024, result
