"""Freed heap memory goes back to the OS (glibc), and threads share capped arenas: what ``passk score``
relies on between batches."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from passkcore.memory import release_free_memory


def _rss_anon_mib() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) / 1024 for line in fh if line.startswith("RssAnon:"))


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's malloc_trim and /proc/self/status")
def test_freed_heap_chunks_are_returned() -> None:
    # 1,500 blocks of 64 KiB (below glibc's mmap threshold: on the heap), the last one kept alive so
    # glibc cannot trim the heap's top on its own: ~94 MiB freed in the middle of the heap.
    blocks = [np.ones(8192) for _ in range(1500)]
    keep = blocks[-1]
    del blocks
    before = _rss_anon_mib()
    release_free_memory(arrow=True)
    after = _rss_anon_mib()
    assert keep.sum() == 8192
    assert before - after > 50, (before, after)


_ARENAS = """
import ctypes, ctypes.util, sys, threading
from passkcore.memory import limit_heap_arenas
if sys.argv[1] == "cap":
    assert limit_heap_arenas(1)
together = threading.Barrier(4)
def work():
    blocks = [ctypes.create_string_buffer(4096) for _ in range(200)]  # malloc'd in this thread's arena
    together.wait()  # all four alive at once: none can take over an arena another thread left
    del blocks
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
ctypes.CDLL(ctypes.util.find_library("c")).malloc_stats()  # one "Arena N:" block per arena, on stderr
"""


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's mallopt and malloc_stats")
def test_heap_arenas_are_capped() -> None:
    import subprocess

    def arenas(mode: str) -> int:
        done = subprocess.run([sys.executable, "-c", _ARENAS, mode], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stderr.count("Arena ")

    free, capped = arenas("free"), arenas("cap")
    assert free >= 4  # four threads at once: arenas of their own (plus the main one, and numpy's threads')
    assert capped <= free - 3, (free, capped)  # none new once capped: those made at import time stay
