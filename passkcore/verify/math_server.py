"""The math workers' fork server: an interpreter of its own that never imports the caller's main module.

``math_pool`` starts it as ``python -c BOOT`` with the caller's ``sys.path`` (so what the caller imports, it
imports) and one end of a SOCK_SEQPACKET socket pair. It imports math-verify and sympy once and warms
them (``math_preload``), then forks each worker from that state on request: a worker costs milliseconds
instead of ~1 s of imports. Nothing in it or its workers runs the caller's script, so a script without an
``if __name__ == "__main__":`` guard, a notebook or another stack's process verifies math like any
other (multiprocessing's spawn and forkserver children re-import the caller's main module, and run it
when it has no guard).

Requests are JSON, one per packet; replies too:

- ``{"op": "fork", "memory_mb": M}``: ``{"pid": P}`` with two descriptors attached: the worker's channel
  (a socket for ``multiprocessing.connection.Connection``) and its slot (a 16-byte memfd: the sample
  it is on, or -1, and since when, as two doubles).
- ``{"op": "reap", "pid": P}``: ``{"exitcode": C}`` once it has ended (negative: the signal that ended
  it). Only this reaps, so a worker's pid is never reused while its caller may still signal it.

The server is single-threaded, so forking is safe whatever threads the caller has. It ignores SIGINT
(Ctrl-C reaches the process group; the caller decides) and exits on EOF, when its caller closes the
socket or dies; its workers, under PR_SET_PDEATHSIG, die with it. ``ForkServer`` and ``WorkerProcess``
are the caller's side (used by ``math_pool``): the server started and asked, a worker watched and killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import mmap
import os
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any, Optional

from passkcore.verify.math import VERIFIER, check_math
from passkcore.verify.verdict import Verdict

# The server's start: ~1 s of imports measured here; far more allowed for a machine under load.
SERVER_START_S = 120.0
SERVER_REPLY_S = 30.0  # a fork, or a reap of an ended worker: milliseconds
IDLE = -1.0  # a slot's sample index while its worker is between samples
SLOT_BYTES = 16  # two doubles: [sample index or IDLE, time.monotonic() when it started]
MAX_MESSAGE = 4096
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _judge(response: str, gold: str, extract: str, memory_mb: int) -> Verdict:
    try:
        return check_math(response, gold, extract)
    except MemoryError:
        return Verdict(False, "memory", None, VERIFIER, f"over the {memory_mb} MiB address-space limit",
                       extract_policy=extract)
    except Exception as exc:  # noqa: BLE001 - a parser failure on one sample is that sample's verdict
        return Verdict(False, "crashed", None, VERIFIER, f"{type(exc).__name__}: {exc}"[:300], extract_policy=extract)


def worker_main(conn: Connection, slot: Any, memory_mb: int) -> None:
    """A math worker's loop: chunks of (index, response, gold) in, lists of (index, Verdict) out."""
    # If the server dies (its caller died without ending it), this delivers SIGKILL to a worker still
    # computing, instead of leaving it busy on 9^{9^{9^{9}}} for good.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    while True:
        try:
            extract, samples = conn.recv()
        except (EOFError, OSError):
            return
        out = []
        for index, response, gold in samples:
            # Start time first, index second: a caller reading between the two writes sees the old
            # index with a later start, which only defers its check.
            slot[1] = time.monotonic()
            slot[0] = float(index)
            out.append((index, _judge(response, gold, extract, memory_mb)))
        slot[0] = IDLE
        conn.send(out)


def _child(ctl: socket.socket, ours: socket.socket, theirs: socket.socket, slot_fd: int, memory_mb: int) -> int:
    ctl.close()  # the worker never reaches the server's channel
    ours.close()
    with mmap.mmap(slot_fd, SLOT_BYTES) as mm:
        os.close(slot_fd)
        slot = memoryview(mm).cast("d")
        try:
            worker_main(Connection(theirs.detach()), slot, memory_mb)
        finally:
            slot.release()
    return 0


def _fork(ctl: socket.socket, memory_mb: int) -> None:
    ours, theirs = socket.socketpair()
    slot_fd = os.memfd_create("passk-math-slot")
    try:
        os.pwrite(slot_fd, struct.pack("dd", IDLE, 0.0), 0)
        pid = os.fork()
    except OSError as exc:
        for s in (ours, theirs):
            s.close()
        os.close(slot_fd)
        ctl.send(json.dumps({"error": f"cannot fork a math worker: {exc}"}).encode())
        return
    if pid == 0:
        code = 1
        try:
            code = _child(ctl, ours, theirs, slot_fd, memory_mb)
        except BaseException:  # noqa: BLE001 - the worker's own crash: its exit status says so
            traceback.print_exc(limit=5)
        finally:
            os._exit(code)
    theirs.close()
    try:
        socket.send_fds(ctl, [json.dumps({"pid": pid}).encode()], [ours.fileno(), slot_fd])
    finally:
        ours.close()
        os.close(slot_fd)


def _exitcode(pid: int) -> int:
    try:
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    except ChildProcessError:  # not ours, or reaped already: nothing to tell
        return -signal.SIGKILL


def serve(ctl: socket.socket) -> None:
    """Answers requests until EOF."""
    while True:
        try:
            data = ctl.recv(MAX_MESSAGE)
        except OSError:
            return
        if not data:
            return
        request = json.loads(data)
        if request.get("op") == "fork":
            _fork(ctl, int(request["memory_mb"]))
        elif request.get("op") == "reap":
            ctl.send(json.dumps({"exitcode": _exitcode(int(request["pid"]))}).encode())
        else:
            ctl.send(json.dumps({"error": f"unknown request {request!r:.100}"}).encode())


def main(fd: int) -> None:
    """The server's life (started by BOOT, warm already): say ready, serve until EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ctl = socket.socket(fileno=fd)
    ctl.send(json.dumps({"ready": True, "pid": os.getpid()}).encode())
    serve(ctl)


# Run as `python -c BOOT FD SYS_PATH_JSON`: SIGINT ignored, the caller's sys.path, math-verify and sympy
# imported and warmed (math_preload, ~1 s, paid once per server), then the server's loop.
BOOT = ("import json, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "sys.path[:] = json.loads(sys.argv[2]); import passkcore.verify.math_preload; "
        "from passkcore.verify.math_server import main; main(int(sys.argv[1]))")


class ForkServer:
    """The caller's side: a fork server started on first use, started again if it ended. One request at
    a time (a lock); each reply comes in milliseconds. After ``after_fork_in_child``, a forked copy of
    the caller starts its own: the parent's is the parent's."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.sock: Optional[socket.socket] = None
        self.generation = 0  # which server forked a worker: a worker outlives none of them
        self.inherited: list[Any] = []  # a parent's servers seen after a fork: kept so they are never waited on

    def _launch(self) -> None:
        if not sys.executable:
            raise RuntimeError("math verification starts its worker server with this Python, but sys.executable is empty")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            path = json.dumps([os.fspath(p) for p in sys.path if isinstance(p, (str, os.PathLike))])
            self.proc = subprocess.Popen([sys.executable, "-c", BOOT, str(theirs.fileno()), path],
                                         pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        finally:
            theirs.close()
        self.sock, self.generation = ours, self.generation + 1
        try:
            self._reply(SERVER_START_S, 0)
        except (OSError, ValueError) as exc:
            self._end()
            code = self.proc.returncode if self.proc else None
            raise RuntimeError(f"the math workers' server did not start ({exc}; exit {code}): its error, if any, is "
                               f"on stderr; it runs `{sys.executable} -c ...` with this process's sys.path") from None

    def _reply(self, timeout: float, maxfds: int) -> tuple[dict[str, Any], list[int]]:
        assert self.sock is not None
        self.sock.settimeout(timeout)
        data, fds, _, _ = socket.recv_fds(self.sock, MAX_MESSAGE, maxfds)
        if not data:
            raise ConnectionError("the math workers' server ended")
        reply = json.loads(data)
        if "error" in reply:
            for fd in fds:
                os.close(fd)
            raise RuntimeError(str(reply["error"]))
        return reply, fds

    def _end(self) -> None:
        if self.sock is not None:
            self.sock.close()  # EOF: the server exits, and its workers with it
        if self.proc is not None:
            try:
                self.proc.wait(5.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.sock = None

    def fork(self, memory_mb: int) -> tuple[int, int, list[int]]:
        """A fresh worker: its pid, the server's generation, and its channel's and slot's descriptors."""
        with self.lock:
            for attempt in range(2):
                if self.sock is None:
                    self._launch()
                try:
                    assert self.sock is not None
                    self.sock.send(json.dumps({"op": "fork", "memory_mb": memory_mb}).encode())
                    reply, fds = self._reply(SERVER_REPLY_S, 2)
                    if len(fds) == 2:
                        return int(reply["pid"]), self.generation, fds
                    for fd in fds:
                        os.close(fd)
                    raise ConnectionError(f"the math workers' server sent {len(fds)} descriptors, not 2")
                except (OSError, ValueError):  # it ended, hung or garbled: a new one, once
                    self._end()
                    if attempt:
                        raise
        raise AssertionError("unreachable")

    def reap(self, pid: int, generation: int) -> int:
        """The exit code of an ended worker (negative: its signal). One whose server is gone died with it."""
        with self.lock:
            if generation != self.generation or self.sock is None:
                return -signal.SIGKILL
            try:
                self.sock.send(json.dumps({"op": "reap", "pid": pid}).encode())
                return int(self._reply(SERVER_REPLY_S, 0)[0]["exitcode"])
            except (OSError, ValueError):
                self._end()
                return -signal.SIGKILL

    def close(self) -> None:
        with self.lock:
            self._end()

    def after_fork_in_child(self) -> None:
        # Another thread may have held the lock at the fork; the parent's server must still see EOF
        # when the parent ends, so this copy of its socket closes; its Popen is never waited on here.
        self.lock = threading.Lock()
        if self.sock is not None:
            self.sock.close()
        if self.proc is not None:
            self.inherited.append(self.proc)
        self.sock, self.proc = None, None
        self.generation += 1


def _readable(fd: int, timeout: Optional[float]) -> bool:
    poller = select.poll()  # not select(): a busy process (Ray) has descriptors past FD_SETSIZE
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(None if timeout is None else max(0, int(timeout * 1000))))


class WorkerProcess:
    """A worker forked by the server: signalled by pid (only a reap request frees it, so its pid is
    never reused meanwhile), watched through a pidfd, or /proc where pidfds are missing."""

    def __init__(self, server: ForkServer, pid: int, generation: int) -> None:
        self.server, self.pid, self.generation = server, pid, generation
        self.exitcode: Optional[int] = None
        try:
            self.sentinel: Optional[int] = os.pidfd_open(pid)
        except (OSError, AttributeError):
            self.sentinel = None

    def _ended(self) -> bool:
        if self.sentinel is not None:
            return _readable(self.sentinel, 0)
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as fh:
                return fh.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
        except (OSError, IndexError):
            return True

    def poll(self) -> Optional[int]:
        if self.exitcode is None and self._ended():
            self.exitcode = self.server.reap(self.pid, self.generation)
            if self.sentinel is not None:
                os.close(self.sentinel)
                self.sentinel = None
        return self.exitcode

    def kill(self) -> None:
        if self.exitcode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            if self.sentinel is not None:  # this process and no other, whatever became of its pid
                signal.pidfd_send_signal(self.sentinel, signal.SIGKILL)
            elif self.generation == self.server.generation:  # unreaped by its live server: the pid is still its own
                os.kill(self.pid, signal.SIGKILL)

    def join(self, timeout: Optional[float] = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            if self.sentinel is not None:
                _readable(self.sentinel, left)
            else:
                time.sleep(0.01 if left is None else min(0.01, left))
