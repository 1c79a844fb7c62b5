"""Math verification in worker processes that one answer cannot stall, and whose fate is its own.

- **Time.** The parent knows which sample each worker is running and since when. A worker still on
  its sample at the deadline gets SIGKILL, which neither math-verify (it catches ``Exception`` in
  about twenty places) nor sympy's C-level big-integer arithmetic can catch or delay: that sample is
  ``timeout``, stopped within its limit plus one scheduling step.
- **Memory.** Each worker runs under RLIMIT_AS (``memory_mb``). A ``MemoryError`` that reaches the
  worker's loop, or a worker killed by an allocator abort or the kernel, is ``memory`` for the
  sample it was running; the machine never pays for it.
- **Isolation.** Samples sent to a killed worker that it had not started are rerun on a fresh
  worker, never judged; only the running one is. Every other verdict is the one ``check_math`` gives
  the sample alone, in row order.

Workers are forked by multiprocessing's forkserver with math-verify and sympy already imported and
warmed (``math_preload``), so a fresh worker costs milliseconds instead of ~1 s of imports, and
the forkserver is single-threaded, so forking is safe even when the caller has threads (Ray).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import resource
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Optional

from passkcore.verify.math import EXTRACT_POLICIES, VERIFIER, check_math
from passkcore.verify.verdict import Verdict

# Samples sent to a worker ahead of its current one, so it never idles on the parent's round trip
# (a pipe round trip is ~50 us against ~2 ms per demo answer).
PIPELINE = 2
# A sample is only sent ahead when it fits the socket buffer with room to spare: a send must never
# block on a worker that is stuck on the sample before it (a 200,000-character response waits).
SEND_AHEAD_BYTES = 16 * 1024
# A worker maps ~450 MiB once sympy and math-verify are imported (VmPeak measured here); below this
# every sample would fail on memory.
MIN_MEMORY_MB = 640
# Fresh workers dying before their first sample this many times in a row means no worker can run.
MAX_START_FAILURES = 3
# Idle workers kept for later calls, at most (see _Idle).
MAX_IDLE = max(2, 2 * (os.cpu_count() or 1))
PRELOAD = ["passkcore.verify.math_preload"]


def worker_main(conn: Connection, memory_mb: int) -> None:
    """A math worker's loop: (index, response, gold, policy) in, (index, Verdict) out, until EOF."""
    # Ctrl-C reaches the whole process group; the parent decides what happens to its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    while True:
        try:
            index, response, gold, extract = conn.recv()
        except (EOFError, OSError):
            return
        try:
            verdict = check_math(response, gold, extract)
        except MemoryError:
            verdict = Verdict(False, "memory", None, VERIFIER, f"over the {memory_mb} MiB address-space limit",
                              extract_policy=extract)
        except Exception as exc:  # noqa: BLE001 - a parser failure on one sample is that sample's verdict
            verdict = Verdict(False, "crashed", None, VERIFIER, f"{type(exc).__name__}: {exc}"[:300],
                              extract_policy=extract)
        conn.send((index, verdict))


@dataclass
class _Worker:
    proc: Any
    conn: Connection
    memory_mb: int
    sent: deque[int] = field(default_factory=deque)  # sample indices sent; sent[0] is running
    since: float = 0.0  # when sent[0] started
    served: int = 0  # answers this call
    retire: bool = False  # hit its memory limit: not reused

    def dead(self) -> bool:
        return self.proc.exitcode is not None


class _Idle:
    """Workers left idle by earlier calls, reused by later ones: their caches (parsed reference
    answers, math-verify's parses) stay warm across ``verify_rows`` batches. They are daemons, end
    with this process (or on EOF when it dies), and hold ~100 MiB each, mostly shared with the
    forkserver."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = os.getpid()
        self.workers: list[_Worker] = []

    def take(self, count: int, memory_mb: int) -> list[_Worker]:
        with self.lock:
            if self.pid != os.getpid():  # a forked copy of this process: those workers are not ours
                self.pid, self.workers = os.getpid(), []
            mine = [w for w in self.workers if w.memory_mb == memory_mb and not w.dead()][:count]
            self.workers = [w for w in self.workers if w not in mine and not w.dead()]
        return mine

    def close(self) -> None:
        with self.lock:
            idle, self.workers = self.workers, []
        for w in idle:
            _stop(w, kill=False)

    def give(self, worker: _Worker) -> bool:
        with self.lock:
            if self.pid != os.getpid() or len(self.workers) >= MAX_IDLE:
                return False
            worker.served = 0
            self.workers.append(worker)
            return True


_IDLE = _Idle()


def _context() -> Any:
    ctx = multiprocessing.get_context("forkserver")
    # Takes effect when the forkserver starts (once per process); later calls change nothing.
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def _start(ctx: Any, memory_mb: int) -> _Worker:
    ours, theirs = ctx.Pipe(duplex=True)
    proc = ctx.Process(target=worker_main, args=(theirs, memory_mb), daemon=True, name="passk-math")
    proc.start()
    theirs.close()
    return _Worker(proc, ours, memory_mb)


def _stop(worker: _Worker, kill: bool) -> None:
    if kill and not worker.dead():
        worker.proc.kill()
    worker.conn.close()  # EOF: an idle worker returns
    worker.proc.join(timeout=None if kill else 2.0)
    if worker.proc.exitcode is None:
        worker.proc.kill()
        worker.proc.join()


def _death_verdict(exitcode: int, memory_mb: int, extract: str) -> Verdict:
    """The running sample's verdict when its worker died without being killed by us."""
    if exitcode in (-signal.SIGKILL, -signal.SIGABRT):
        # SIGKILL from the kernel's OOM killer, SIGABRT from an allocator giving up (GMP aborts when an
        # allocation fails under RLIMIT_AS).
        reason = "memory"
        detail = f"worker died (exit {exitcode}) under the {memory_mb} MiB address-space limit"
    else:
        reason, detail = "crashed", f"worker died (exit {exitcode})"
    return Verdict(False, reason, None, VERIFIER, detail, extract_policy=extract)


class _Run:
    """One ``verify_math`` call: the queue, the workers and the verdicts."""

    def __init__(self, items: Sequence[tuple[str, str]], workers: int, timeout_s: float, memory_mb: int,
                 extract: str) -> None:
        self.items, self.timeout_s, self.memory_mb, self.extract = items, timeout_s, memory_mb, extract
        self.results: list[Optional[Verdict]] = [None] * len(items)
        self.todo: deque[int] = deque(range(len(items)))
        self.ctx = _context()
        count = min(workers, len(items))
        self.workers = _IDLE.take(count, memory_mb)
        self.workers += [_start(self.ctx, memory_mb) for _ in range(count - len(self.workers))]
        self.remaining = len(items)
        self.start_failures = 0
        self.done_since_report = 0

    def feed(self, w: _Worker) -> None:
        while self.todo and len(w.sent) < PIPELINE:
            index = self.todo[0]
            response, gold = self.items[index]
            payload = pickle.dumps((index, response, gold, self.extract), protocol=pickle.HIGHEST_PROTOCOL)
            if w.sent and len(payload) > SEND_AHEAD_BYTES:
                return  # sent once the worker is idle, so reading it is all the worker does
            try:
                w.conn.send_bytes(payload)
            except OSError:
                return  # the worker died; replaced below
            self.todo.popleft()
            if not w.sent:
                w.since = time.monotonic()
            w.sent.append(index)

    def collect(self, w: _Worker) -> None:
        try:
            while w.sent and w.conn.poll():
                index, verdict = w.conn.recv()
                if index != w.sent[0]:
                    raise RuntimeError(f"math worker answered sample {index}, expected {w.sent[0]}")
                w.sent.popleft()
                w.since = time.monotonic()
                w.served += 1
                w.retire = w.retire or verdict.reason == "memory"
                self.start_failures = 0
                self.judge(index, verdict)
        except (EOFError, OSError):
            pass  # died mid-message; its exit code tells the rest

    def judge(self, index: int, verdict: Verdict) -> None:
        self.results[index] = verdict
        self.remaining -= 1
        self.done_since_report += 1

    def replace(self, slot: int, verdict: Optional[Verdict]) -> None:
        """Retires worker ``slot`` (killed or dead): its running sample gets ``verdict`` (none: rerun),
        the samples queued behind it go back to the front of the queue, in order."""
        w = self.workers[slot]
        _stop(w, kill=True)
        if w.sent and verdict is not None:
            self.judge(w.sent.popleft(), verdict)
        elif w.served == 0:
            self.start_failures += 1
            if self.start_failures >= MAX_START_FAILURES:
                raise RuntimeError(f"math workers exit before their first sample (exit {w.proc.exitcode}): a script "
                                   "that verifies math needs an `if __name__ == '__main__':` guard (workers "
                                   "re-import the main module, as with multiprocessing's spawn)")
        self.todo.extendleft(reversed(w.sent))
        self.workers[slot] = _start(self.ctx, self.memory_mb)

    def step(self) -> None:
        for w in self.workers:
            self.feed(w)
        running = [w.since + self.timeout_s for w in self.workers if w.sent]
        timeout = max(0.0, min(running) - time.monotonic()) if running else None
        wait([w.conn for w in self.workers if w.sent] + [w.proc.sentinel for w in self.workers], timeout=timeout)
        now = time.monotonic()
        for slot, w in enumerate(self.workers):
            self.collect(w)
            if w.dead():
                # A worker that exits cleanly before its first answer never ran its sample (a broken
                # start); any other death is the running sample's doing.
                started = w.served > 0 or (w.proc.exitcode or 0) < 0
                verdict = _death_verdict(w.proc.exitcode, self.memory_mb, self.extract) if w.sent and started else None
                self.replace(slot, verdict)
            elif w.sent and now >= w.since + self.timeout_s:
                self.replace(slot, Verdict(False, "timeout", None, VERIFIER,
                                           f"over the {self.timeout_s:g} s limit: killed after {now - w.since:.2f} s",
                                           extract_policy=self.extract))

    def close(self) -> None:
        for w in self.workers:
            if w.sent or w.retire or w.dead() or not _IDLE.give(w):
                _stop(w, kill=bool(w.sent))


def close_idle_workers() -> None:
    """Ends the math workers kept idle for later calls (say, before a stage that needs the memory)."""
    _IDLE.close()


def verify_math(
    items: Sequence[tuple[str, str]],
    *,
    workers: int,
    timeout_s: float,
    memory_mb: int,
    extract: str = "fallback",
    progress: Optional[Callable[[int], None]] = None,
) -> list[Verdict]:
    """Verdicts for (response, gold) pairs, in order, under a per-sample wall-clock limit and a
    per-worker address-space limit (see the module docstring for the guarantees)."""
    if extract not in EXTRACT_POLICIES:
        raise ValueError(f"math_extract must be one of {EXTRACT_POLICIES}, got {extract!r}")
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
    if memory_mb < MIN_MEMORY_MB:
        raise ValueError(f"memory_mb={memory_mb}: a math worker needs at least {MIN_MEMORY_MB} MiB of address "
                         "space (sympy and math-verify alone map ~450 MiB)")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers!r}")
    if not items:
        return []
    run = _Run(items, workers, timeout_s, memory_mb, extract)
    try:
        while run.remaining:
            run.step()
            if progress and run.done_since_report:
                progress(run.done_since_report)
            run.done_since_report = 0
    finally:
        run.close()
    return [r for r in run.results if r is not None]
