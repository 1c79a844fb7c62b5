"""Starts the sandboxes' processes from one thread that lives as long as the process.

bubblewrap's ``--die-with-parent`` is PR_SET_PDEATHSIG, and Linux sends that signal when the *thread*
that forked the process exits, not the process. A sandbox started by a short-lived thread (a
ThreadPoolExecutor worker shut down after a batch, a caller's thread) was killed with it, and its
judge's next program failed (measured here: ``CodeRunner(workers=2).run`` on 4 honest programs,
three batches: 2 of 4 failed with "crash: the program killed its sandbox" in the second batch).
``popen`` hands every ``subprocess.Popen`` to one daemon thread, so the death signal fires only when
the process ends (a daemon thread is never joined, it stops with the process): a ``kill -9`` of this
process still takes every sandbox with it. A forked copy of this process starts its own thread.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
from concurrent.futures import Future
from typing import Any, Optional


class _Spawner:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid: Optional[int] = None
        self.tasks: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def _serve(self, tasks: queue.SimpleQueue[Any]) -> None:
        while True:
            future, args, kwargs = tasks.get()
            try:
                future.set_result(subprocess.Popen(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
                future.set_exception(exc)

    def submit(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Future[subprocess.Popen[Any]]:
        with self.lock:
            if self.pid != os.getpid():  # first use, or a forked copy: the parent's thread is not here
                self.pid, self.tasks = os.getpid(), queue.SimpleQueue()
                threading.Thread(target=self._serve, args=(self.tasks,), daemon=True, name="passk-spawner").start()
            future: Future[subprocess.Popen[Any]] = Future()
            self.tasks.put((future, args, kwargs))
        return future

    def after_fork_in_child(self) -> None:
        self.lock = threading.Lock()  # another thread may have held it at the fork


_SPAWNER = _Spawner()
os.register_at_fork(after_in_child=_SPAWNER.after_fork_in_child)


def popen(*args: Any, **kwargs: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen(*args, **kwargs)``, forked by the long-lived spawner thread; what Popen raises
    (a program that cannot start) is raised here. The caller's file descriptors (``stdin=fd``,
    ``pass_fds``) stay valid while it waits: they are its own, and it waits for the fork."""
    if threading.current_thread().name == "passk-spawner" and _SPAWNER.pid == os.getpid():
        return subprocess.Popen(*args, **kwargs)  # a preexec_fn that spawns would wait on itself
    return _SPAWNER.submit(args, kwargs).result()
