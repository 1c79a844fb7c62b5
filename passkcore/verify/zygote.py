"""The warm interpreter inside a sandbox: forks one fresh child per sample and never runs sample code.

Started by passkcore.verify.judge inside bubblewrap as ``python -I -B zygote.py WORKDIR [SITE]`` with a unix
socket on fd 0 (the control channel). It imports the standard library modules samples use most, drops
root to nobody and makes itself undumpable (a child of the same uid cannot ptrace it or read its
memory), then serves ``fork`` requests: the child gets the descriptors passed with the request, its own
session, rlimits and an empty work directory, and runs one of three modes:

- ``call``: load the candidate program, then answer call frames on its channel with the return value
  and the arguments after the call, as plain data (wire.py), or the exception's name;
- ``stdio``: run the candidate program as ``__main__`` with stdin/stdout/stderr on the passed files;
- ``harness``: run the problem's prompt and tests (trusted dataset code) with ``candidate`` a proxy that
  sends calls straight to the candidate's process (a socket between the two sandboxes) and rebuilds
  the replies as plain data; report to the parent whether ``check(candidate)`` returned, or the name
  the tests lack when their own code raised a NameError for a name nothing they were given defines.

On ``reap`` (or when the parent closes the channel) it kills the child's session and, inside its own
pid namespace, every other process it can signal, then wipes the work directory. Standard library
only: this file runs inside the sandbox.
"""

import ast
import builtins
import os
import resource
import select
import shutil
import signal
import socket
import sys
import traceback
from typing import Any, Optional

if __package__:
    from passkcore.verify import wire
else:  # in the sandbox: the sibling module, mounted read-only next to this file
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import wire  # type: ignore[no-redef]

_NOBODY = 65534
_PREWARM = ("typing", "math", "collections", "itertools", "functools", "re", "string", "heapq", "bisect",
            "fractions", "decimal", "statistics", "copy", "random", "hashlib", "json", "operator", "cmath")
_OUTPUT_LIMIT = 16 * 2**20  # bytes any one file (stdout included) may grow to


class CandidateGone(BaseException):
    """The candidate crashed or ran out of time: abort check(); no except clause in the tests catches it."""


class CandidateError(Exception):
    """The candidate raised, or returned something that is not plain data (tests may expect a raise)."""


def _undumpable() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except (OSError, AttributeError, ImportError):
        pass


def _limits(timeout_s: float, memory_mb: int, max_procs: int) -> None:
    cpu = int(timeout_s) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))
    resource.setrlimit(resource.RLIMIT_FSIZE, (_OUTPUT_LIMIT, _OUTPUT_LIMIT))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    resource.setrlimit(resource.RLIMIT_NPROC, (max_procs, max_procs))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _reopen_std() -> None:
    sys.stdin = open(0, closefd=False, errors="replace")
    sys.stdout = open(1, "w", closefd=False, errors="replace")
    sys.stderr = open(2, "w", closefd=False, errors="replace")


def _null_std() -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if fd != null:
            os.dup2(null, fd)
    if null > 2:
        os.close(null)
    _reopen_std()


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def _run_stdio(msg: dict, fds: list) -> int:
    for target, fd in zip((0, 1, 2), fds):
        os.dup2(fd, target)
        os.close(fd)
    _reopen_std()
    _limits(msg["timeout_s"], msg["memory_mb"], msg["max_procs"])
    code = 0
    try:
        exec(compile(msg["source"], "main.py", "exec"), {"__name__": "__main__"})
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - the program's own crash: its exit status says so
        traceback.print_exc(limit=3)
        code = 1
    for stream in (sys.stdout, sys.stderr):  # os._exit follows: nothing else flushes them
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or 1
    return code


def _run_call(msg: dict, chan: socket.socket) -> int:
    _null_std()
    _limits(msg["timeout_s"], msg["memory_mb"], msg["max_procs"])
    try:
        namespace: dict[str, Any] = {"__name__": "__passk_candidate__"}
        exec(compile(msg["source"], "main.py", "exec"), namespace)
        owner, _, method = msg["entry"].partition(".")
        fn = namespace[owner]
        if method:  # Class.method (LiveCodeBench's Solution.f): the method of one instance, as its harness does
            fn = getattr(fn(), method)
    except BaseException as exc:  # noqa: BLE001 - a program that does not load is that program's crash
        wire.send(chan, {"e": _short(exc)})
        return 1
    wire.send(chan, {"ready": True})
    while True:
        try:
            request, _ = wire.recv(chan)
        except EOFError:
            return 0
        args, kwargs = wire.from_tree(request["a"]), wire.from_tree(request.get("k", ["d"]))
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - reported as this call's crash
            wire.send(chan, {"e": _short(exc)})
            continue
        try:
            reply = {"r": wire.to_tree(result), "a": wire.to_tree(args)}
        except (wire.WireError, RecursionError) as exc:
            reply = {"u": str(exc)[:200]}
        try:
            wire.send(chan, reply)
        except wire.WireError as exc:  # over wire.MAX_FRAME
            wire.send(chan, {"u": str(exc)[:200]})


class _Proxy:
    """``candidate`` in the harness: plain data out, plain data back, straight from the candidate's
    process over one socket and parsed strictly (wire.py): the candidate reaches nothing else here."""

    def __init__(self, chan: socket.socket) -> None:
        self._chan = chan
        self._loaded = False
        self.outputs: list[Any] = []  # (return value, arguments after) per call: the answer key
        self.failure: Optional[str] = None  # the first crash or unserialisable return, for the report

    def _receive(self) -> dict:
        try:
            reply, _ = wire.recv(self._chan)
        except wire.WireError:
            reply = {"gone": "unserialisable return: malformed frame"}
        except (EOFError, OSError):  # OSError: reset by a candidate that killed its own sandbox
            reply = {"gone": "crash: the program ended"}
        if "gone" in reply:
            self.failure = self.failure or reply["gone"]
            raise CandidateGone(reply["gone"])
        return reply

    def load(self) -> None:
        if not self._loaded:
            self._loaded = True
            ready = self._receive()
            if ready.get("ready") is not True:
                self.failure = "crash: " + str(ready.get("e", "no reply"))[:200]
                raise CandidateGone(self.failure)

    def __call__(self, *args, **kwargs):
        self.load()
        message = {"a": wire.to_tree(list(args)), "k": wire.to_tree(kwargs)}
        try:
            wire.send(self._chan, message)
        except OSError:  # the candidate is gone (it killed its own sandbox): never an exception tests may catch
            self.failure = self.failure or "crash: the program ended"
            raise CandidateGone(self.failure) from None
        reply = self._receive()
        try:
            value, after = wire.from_tree(reply.get("r")), wire.from_tree(reply.get("a"))
        except wire.WireError:
            reply = {"u": True}
        if "r" not in reply:
            error = "unserialisable return" if "u" in reply else "crash: " + str(reply.get("e", "no reply"))[:200]
            self.failure = self.failure or error
            self.outputs.append(["failed"])
            raise CandidateError(error)  # an Exception: tests that expect a raise may catch it
        self.outputs.append([value, after])
        for before, new in zip(args, after if type(after) is list else ()):
            if type(before) is list and type(new) is list:
                before[:] = new
            elif type(before) in (dict, set) and type(new) is type(before):
                before.clear()
                before.update(new)
        return value


def _defined(*sources: str) -> set:
    """Every name these sources bind anywhere (defs, classes, imports, assignments, arguments)."""
    names: set = set()
    for source in sources:
        for text in (source, source + "\n    pass\n"):
            try:
                tree = ast.parse(text)
            except (SyntaxError, ValueError, RecursionError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.add(node.name)
                elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                    names.add(node.id)
                elif isinstance(node, ast.alias):
                    names.add((node.asname or node.name).split(".")[0])
                elif isinstance(node, ast.arg):
                    names.add(node.arg)
            break
    return names


def _missing_name(exc: BaseException, msg: dict) -> Optional[str]:
    """The name a NameError of the tests' own code lacks, where neither the tests nor the prompt
    define it and it is not the entry point: the harness was not given what the tests need (HumanEval's
    prompt helpers), which is no fault of the candidate."""
    if type(exc) is not NameError:
        return None
    name = getattr(exc, "name", None)
    if not isinstance(name, str) or name == msg["entry"] or hasattr(builtins, name):
        return None
    return None if name in _defined(msg["prompt"], msg["tests"]) else name


def _run_harness(msg: dict, parent: socket.socket, chan: socket.socket) -> int:
    _null_std()
    _limits(msg["timeout_s"], msg["memory_mb"], msg["max_procs"])
    namespace: dict[str, Any] = {"__name__": "__passk_harness__"}
    # The prompt defines helpers the tests call (HumanEval/32's poly): the dataset's, not the sample's.
    # A prompt ending in a bare signature gets a body; one that still does not run defines nothing.
    for source in (msg["prompt"], msg["prompt"] + "\n    pass\n"):
        try:
            exec(compile(source, "prompt.py", "exec"), namespace)
            break
        except BaseException:  # noqa: BLE001, S112
            continue
    try:
        exec(compile(msg["tests"], "tests.py", "exec"), namespace)
        check = namespace["check"]
    except BaseException as exc:  # noqa: BLE001
        wire.send(parent, {"done": False, "why": "harness: tests do not load: " + _short(exc)})
        return 1
    proxy = _Proxy(chan)
    namespace[msg["entry"]] = proxy
    why = None
    try:
        check(proxy)
        proxy.load()  # a program that does not load fails even where the tests never call it
    except CandidateGone as exc:
        why = str(exc)
    except AssertionError as exc:
        line = traceback.extract_tb(exc.__traceback__)[-1]
        why = proxy.failure or f"wrong_answer: assertion failed at tests line {line.lineno}"
    except BaseException as exc:  # noqa: BLE001 - check() raised: the sample failed its tests
        missing = None if proxy.failure else _missing_name(exc, msg)
        if missing is not None:
            wire.send(parent, {"done": False, "missing": missing})
            return 0
        why = proxy.failure or "wrong_answer: tests raised " + _short(exc)
    key = wire.digest(proxy.outputs)
    wire.send(parent, {"done": why is None, "why": why, "key": key})
    return 0


def _child(msg: dict, fds: list, ctl: socket.socket, workdir: str) -> int:
    ctl.close()  # the child must never reach the control channel
    os.setsid()
    os.chdir(workdir)
    os.environ["HOME"] = workdir
    mode = msg["mode"]
    if mode == "stdio":
        return _run_stdio(msg, fds)
    chans = [socket.socket(fileno=fd) for fd in fds]
    return _run_call(msg, chans[0]) if mode == "call" else _run_harness(msg, chans[0], chans[1])


def _describe(status: int) -> list:
    if os.WIFSIGNALED(status):
        return ["signal", os.WTERMSIG(status)]
    return ["exit", os.WEXITSTATUS(status)]


def _wipe(workdir: str) -> None:
    for name in os.listdir(workdir):
        path = os.path.join(workdir, name)
        for _ in range(2):
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    for root, dirs, _files in os.walk(path):
                        for d in dirs:
                            os.chmod(os.path.join(root, d), 0o700)
                    os.chmod(path, 0o700)
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
                break
            except OSError:
                continue


def _session(ctl: socket.socket, msg: dict, fds: list, workdir: str, own_pidns: bool) -> None:
    sample_dir = os.path.join(workdir, "s")
    _wipe(workdir)  # normally empty already; whatever a failed wipe left must not reach this sample
    os.mkdir(sample_dir, 0o700)
    try:
        pid = os.fork()
    except OSError as exc:
        for fd in fds:
            os.close(fd)
        wire.send(ctl, {"error": "fork failed: " + _short(exc)})
        return
    if pid == 0:
        code = 70  # kept only when an exception gets past the modes' own handlers
        try:
            code = _child(msg, fds, ctl, sample_dir)
        finally:
            os._exit(code)
    for fd in fds:
        os.close(fd)
    wire.send(ctl, {"pid": pid})
    pidfd = os.pidfd_open(pid)
    status = None
    while True:
        waitables: list[Any] = [ctl] if status is not None else [ctl, pidfd]
        ready, _, _ = select.select(waitables, [], [])
        if pidfd in ready:
            status = _describe(os.waitpid(pid, 0)[1])
            wire.send(ctl, {"exited": status})
        if ctl in ready:
            try:
                request, _ = wire.recv(ctl)
            except EOFError:
                request = {"op": "reap"}
            if request.get("op") == "reap":
                break
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    if own_pidns:  # everything else of this uid here: orphans that left the session included
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
    if status is None:
        status = _describe(os.waitpid(pid, 0)[1])
    os.close(pidfd)
    _wipe(workdir)
    wire.send(ctl, {"reaped": status})


def main() -> None:
    workdir = sys.argv[1]
    if len(sys.argv) > 2:  # the allowlisted packages' folder: after the stdlib, so none shadows it
        sys.path.append(sys.argv[2])
    ctl = socket.socket(fileno=0)
    for name in _PREWARM:
        __import__(name)
    os.makedirs(workdir, mode=0o700, exist_ok=True)
    if os.getuid() == 0 and os.environ.get("PASSK_DROP_UID") == "1":
        os.chown(workdir, _NOBODY, _NOBODY)
        os.setgroups([])
        os.setgid(_NOBODY)
        os.setuid(_NOBODY)
    _undumpable()
    own_pidns = os.environ.get("PASSK_PIDNS") == "1"
    wire.send(ctl, {"ready": True, "uid": os.getuid()})
    while True:
        try:
            msg, fds = wire.recv(ctl, with_fds=4)
        except EOFError:
            return
        if msg.get("op") == "fork":
            _session(ctl, msg, fds, workdir, own_pidns)


if __name__ == "__main__":
    main()
