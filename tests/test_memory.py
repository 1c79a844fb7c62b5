"""Freed heap memory goes back to the OS (glibc): what ``passk score`` relies on between batches."""

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
