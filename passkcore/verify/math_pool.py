"""Math verification in worker processes that one answer cannot stall, and whose fate is its own.

- **Time.** Each worker writes the sample it is on, and since when, to a shared-memory slot before
  starting it. The parent reads the slots and SIGKILLs a worker still on the same sample at its
  deadline, which neither math-verify (it catches ``Exception`` in about twenty places) nor sympy's
  C-level big-integer arithmetic can catch or delay: that sample is ``timeout``, stopped within its
  limit plus one scheduling step.
- **Memory.** Each worker runs under RLIMIT_AS (``memory_mb``). A ``MemoryError`` that reaches the
  worker's loop, or a worker killed by an allocator abort or the kernel, is ``memory`` for the
  sample it was on; the machine never pays for it.
- **Isolation.** The other samples a killed (or dead) worker held, done or not, are rerun on a
  fresh worker, never judged; only the one it was on is. Every other verdict is the one
  ``check_math`` gives the sample alone, in row order.

Samples travel in chunks (one message each way per chunk, not per sample) and the slot costs no
system call, so the bookkeeping adds ~nothing to the ~1 ms of CPU a demo answer takes. Workers are
forked by passkcore's own fork server (``math_server``), an interpreter started with ``python -c`` that
never imports the caller's main module, so a script without an ``if __name__ == "__main__":`` guard,
a notebook or a Ray worker verifies math like any other. It has math-verify and sympy already imported
and warmed (``math_preload``), so a fresh worker (a replacement after a kill included) costs milliseconds
instead of ~1 s of imports, and it is single-threaded, so forking is safe even when the caller has threads
(Ray). One server per process, started on first use; workers left idle at the end of a call are kept
for the next one, caches warm. Calls from several threads at once each get their own workers.
"""

from __future__ import annotations

import atexit
import mmap
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Optional

from passkcore.extras import require
from passkcore.verify.math import EXTRACT_POLICIES, VERIFIER
from passkcore.verify.math_server import SLOT_BYTES, ForkServer, WorkerProcess
from passkcore.verify.verdict import Verdict

# Samples per message. Each chunk is one round trip; at 16 the parent's share is < 10 us a sample.
CHUNK = 16
# A chunk sent while another is still in flight must fit the socket buffer (~200 KiB) with room to
# spare, so a send never blocks on a worker stuck on a sample: 16 KiB of text (4 bytes a character
# at worst). A longer sample travels alone, once its worker has nothing else in flight.
CHUNK_CHARS = 4 * 1024
PIPELINE = 2  # chunks in flight per worker: the next one is there when the current one ends
# A worker maps ~395 MiB once sympy, math-verify and passkcore are imported (VmSize measured here);
# at 448 MiB a series to infinity that fits in 512 already ran out, ordinary answers still passed.
MIN_MEMORY_MB = 512
# Fresh workers dying before their first answer this many times in a row means none can run.
MAX_START_FAILURES = 3
# Idle workers kept for later calls, at most (see _Idle).
MAX_IDLE = max(2, 2 * (os.cpu_count() or 1))


@dataclass
class _Worker:
    proc: WorkerProcess
    conn: Connection
    slot: Any  # shared [sample index or IDLE, time.monotonic() when it started]: a memoryview of mm
    mm: mmap.mmap
    memory_mb: int
    chunks: deque[list[int]] = field(default_factory=deque)  # sample indices of the chunks in flight
    served: int = 0  # answers this call
    retire: bool = False  # hit its memory limit: not reused

    def dead(self) -> bool:
        return self.proc.poll() is not None

    def waitables(self) -> list[Any]:
        """What becomes ready when it answers or ends: its channel (EOF when it dies: it alone holds
        the other end) and its pidfd."""
        return [self.conn] + ([self.proc.sentinel] if self.proc.sentinel is not None else [])

    def on(self) -> tuple[int, float]:
        """The sample this worker is on (or -1) and when it started."""
        while True:
            index, started = self.slot[0], self.slot[1]
            if self.slot[0] == index:
                return int(index), started


class _Idle:
    """Workers left idle by earlier calls, reused by later ones: their caches (parsed reference
    answers, math-verify's parses) stay warm across ``verify_rows`` batches. They end with this
    process (EOF on their channel, or their server's end), and hold ~100 MiB each, mostly shared with
    the server."""

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

    def give(self, worker: _Worker) -> bool:
        with self.lock:
            if self.pid != os.getpid() or len(self.workers) >= MAX_IDLE:
                return False
            worker.served = 0
            self.workers.append(worker)
            return True

    def close(self) -> None:
        with self.lock:
            idle, self.workers = self.workers, []
        for w in idle:
            _stop(w, kill=False)

    def after_fork_in_child(self) -> None:
        # The parent's workers: this copy of their channels closes, so they still see EOF when the
        # parent ends; the lock is new (another thread may have held it at the fork).
        self.lock = threading.Lock()
        for w in self.workers:
            w.conn.close()
            if w.proc.sentinel is not None:
                os.close(w.proc.sentinel)
        self.pid, self.workers = os.getpid(), []


_IDLE = _Idle()
_SERVER = ForkServer()


def _after_fork_in_child() -> None:
    _IDLE.after_fork_in_child()
    _SERVER.after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_SERVER.close)


def _start(memory_mb: int) -> _Worker:
    pid, generation, (conn_fd, slot_fd) = _SERVER.fork(memory_mb)
    try:
        mm = mmap.mmap(slot_fd, SLOT_BYTES)
    finally:
        os.close(slot_fd)
    return _Worker(WorkerProcess(_SERVER, pid, generation), Connection(conn_fd), memoryview(mm).cast("d"), mm, memory_mb)


def _stop(worker: _Worker, kill: bool) -> None:
    if kill:
        worker.proc.kill()
    worker.conn.close()  # EOF: an idle worker returns
    worker.proc.join(timeout=None if kill else 2.0)
    if worker.proc.exitcode is None:
        worker.proc.kill()
        worker.proc.join()
    worker.slot.release()
    worker.mm.close()


def _death_verdict(exitcode: int, memory_mb: int, extract: str) -> Verdict:
    """The verdict of the sample a worker was on when it died without being killed by us."""
    if exitcode in (-signal.SIGKILL, -signal.SIGABRT):
        # SIGKILL from the kernel's OOM killer, SIGABRT from an allocator giving up (GMP aborts when an
        # allocation fails under RLIMIT_AS).
        reason = "memory"
        detail = f"worker died (exit {exitcode}) under the {memory_mb} MiB address-space limit"
    else:
        reason, detail = "crashed", f"worker died (exit {exitcode})"
    return Verdict(False, reason, None, VERIFIER, detail, extract_policy=extract)


def close_idle_workers() -> None:
    """Ends the math workers kept idle for later calls (say, before a stage that needs the memory)."""
    _IDLE.close()


class _Run:
    """One ``verify_math`` call: the queue, the workers and the verdicts."""

    def __init__(self, items: Sequence[tuple[str, str]], workers: int, timeout_s: float, memory_mb: int,
                 extract: str) -> None:
        self.items, self.timeout_s, self.memory_mb, self.extract = items, timeout_s, memory_mb, extract
        self.results: list[Optional[Verdict]] = [None] * len(items)
        self.remaining = len(items)
        self.todo: deque[int] = deque(range(len(items)))
        count = min(workers, len(items))
        self.workers = _IDLE.take(count, memory_mb)
        self.workers += [_start(memory_mb) for _ in range(count - len(self.workers))]
        self.start_failures = 0
        self.reported = 0

    def next_chunk(self, busy: bool) -> list[int]:
        # Smaller chunks as the queue drains, so the workers finish together.
        size_cap = max(1, min(CHUNK, len(self.todo) // (PIPELINE * len(self.workers))))
        chunk: list[int] = []
        chars = 0
        while self.todo and len(chunk) < size_cap:
            response, gold = self.items[self.todo[0]]
            size = len(response) + len(gold)
            if chunk and chars + size > CHUNK_CHARS or busy and size > CHUNK_CHARS:
                break  # a long sample goes alone, and only to a worker with nothing in flight
            chunk.append(self.todo.popleft())
            chars += size
        return chunk

    def feed(self, w: _Worker) -> None:
        while self.todo and len(w.chunks) < PIPELINE:
            chunk = self.next_chunk(busy=bool(w.chunks))
            if not chunk:
                return
            try:
                w.conn.send((self.extract, [(i, *self.items[i]) for i in chunk]))
            except OSError:
                self.todo.extendleft(reversed(chunk))
                return  # the worker died; replaced in step()
            w.chunks.append(chunk)

    def judge(self, index: int, verdict: Verdict) -> None:
        self.results[index] = verdict
        self.remaining -= 1

    def collect(self, w: _Worker) -> None:
        try:
            while w.chunks and w.conn.poll():
                answers = w.conn.recv()
                chunk = w.chunks.popleft()
                if [i for i, _ in answers] != chunk:
                    raise RuntimeError(f"a math worker answered samples {[i for i, _ in answers]}, sent {chunk}")
                for index, verdict in answers:
                    self.judge(index, verdict)
                    w.retire = w.retire or verdict.reason == "memory"
                w.served += len(answers)
                self.start_failures = 0
        except (EOFError, OSError):
            pass  # died mid-message; its exit code tells the rest

    def replace(self, slot: int, on: int, verdict: Optional[Verdict]) -> None:
        """Retires worker ``slot`` (killed or dead): sample ``on`` gets ``verdict`` (none: nothing is
        judged); every other sample it held goes back to the front of the queue, in order."""
        w = self.workers[slot]
        _stop(w, kill=True)
        held = [i for chunk in w.chunks for i in chunk]
        if verdict is not None and on in held:
            self.judge(on, verdict)
            held.remove(on)
        elif w.served == 0:
            self.start_failures += 1
            if self.start_failures >= MAX_START_FAILURES:
                raise RuntimeError(f"math workers exit before their first answer (exit {w.proc.exitcode}), "
                                   f"{MAX_START_FAILURES} in a row: their error, if any, is on stderr")
        self.todo.extendleft(reversed(held))
        self.workers[slot] = _start(self.memory_mb)

    def deadline(self, w: _Worker, now: float) -> float:
        """When ``w`` is next to be checked: its sample's deadline, or a limit from now between samples
        (the next sample's start is later than now, so this never sleeps past its deadline)."""
        on, started = w.on()
        return started + self.timeout_s if on >= 0 else now + self.timeout_s

    def step(self) -> None:
        for w in self.workers:
            self.feed(w)
        now = time.monotonic()
        busy = [w for w in self.workers if w.chunks]
        timeout = max(0.0, min(self.deadline(w, now) for w in busy) - now) if busy else None
        wait([x for w in self.workers for x in w.waitables()], timeout=timeout)
        now = time.monotonic()
        for slot, w in enumerate(self.workers):
            self.collect(w)
            on, started = w.on()
            if w.dead():
                exitcode = w.proc.exitcode if w.proc.exitcode is not None else -9  # dead: reaped or killed
                self.replace(slot, on, _death_verdict(exitcode, self.memory_mb, self.extract) if on >= 0 else None)
            elif w.chunks and on >= 0 and now >= started + self.timeout_s:
                self.replace(slot, on, Verdict(
                    False, "timeout", None, VERIFIER,
                    f"over the {self.timeout_s:g} s limit: killed after {now - started:.2f} s",
                    extract_policy=self.extract))

    def close(self) -> None:
        for w in self.workers:
            if w.chunks or w.retire or w.dead() or not _IDLE.give(w):
                _stop(w, kill=bool(w.chunks))


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
                         "space (sympy and math-verify alone map ~400 MiB)")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers!r}")
    if not items:
        return []
    # Here, for every caller (verify_rows, the lm-eval/lighteval judges, verl's reward): without
    # math-verify each worker would fail every sample ("crashed" verdicts, stored).
    require("verify", by="math verification")
    run = _Run(items, workers, timeout_s, memory_mb, extract)
    try:
        while run.remaining:
            run.step()
            done = len(items) - run.remaining
            if progress and done > run.reported:
                progress(done - run.reported)
            run.reported = done
    finally:
        run.close()
    return [r for r in run.results if r is not None]
