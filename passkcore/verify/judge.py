"""Code verdicts decided outside the judged process.

Two warm sandboxes per judge, each a zygote (zygote.py) inside its own bubblewrap: pid, mount, ipc and
network namespaces of its own, so the candidate cannot see, signal or trace the other one, and a
root holding only the interpreter, its standard library and shared libraries, and the allowlisted
packages (mounts.py, packages.py): no file of the host that could hold a test or an answer. The
candidate sandbox runs the sample's program; the harness sandbox runs the dataset's tests. This
process relays calls between them and reads back only plain data (wire.py), parsed strictly: the
verdict comes from the harness's report or from comparisons made here, never from anything the
candidate prints, exits with or patches. Each sample is a fresh fork of a zygote, with rlimits, its
own session and an empty directory; a timeout or crash of either side is a failed sample, a sandbox
that cannot start is ``VerifierUnavailable``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

from passkcore.problems import Problem
from passkcore.verify import wire
from passkcore.verify.compare import preview, stdout_equal, values_equal
from passkcore.verify.mounts import LIB_IN_SANDBOX, SITE_IN_SANDBOX, sandbox_python
from passkcore.verify.packages import AllowedPackages, resolve_packages
from passkcore.verify.sandbox import bwrap_available, bwrap_base
from passkcore.verify.spawner import popen
from passkcore.verify.verdict import Verdict

_LIB = Path(__file__).parent
_WORK_IN_SANDBOX = "/tmp/.passk-work"
_START_TIMEOUT = 30.0  # s for a zygote to report ready (interpreter start, ~50 ms here)
_CONTROL_TIMEOUT = 10.0  # s for a fork or reap answer from a live zygote
_OUTPUT_LIMIT = 16 * 2**20  # bytes of stdout read back (the child's RLIMIT_FSIZE is the same)
_MAX_PROCS = 64


class VerifierUnavailable(RuntimeError):
    """The sandbox cannot run (bwrap refused, interpreter not visible inside it, out of resources):
    an error of the verifier, never a verdict on the samples."""


class IncompleteTests(ValueError):
    """The tests call a name that neither they nor the prompt define (HumanEval/32's ``poly`` when
    the harness was not given the prompt): no verdict can be given; the message names the name."""


class _Broken(Exception):
    """A zygote stopped answering its control channel."""


def verifier_name(packages: Sequence[str] = ()) -> str:
    """A verdict's ``verifier``: the sandbox, and every package its programs could import besides the
    standard library (the allowlist with what it requires)."""
    names = resolve_packages(packages).names() if packages else []
    return "sandbox:bwrap" + (f"+packages:{','.join(names)}" if names else "")


class Zygote:
    """One sandbox with a warm interpreter in it; ``fork`` starts a sample's process there."""

    def __init__(self, packages: Optional[AllowedPackages] = None, mounts: Sequence[str] = ()) -> None:
        """A sandbox with the standard library, and ``packages`` (whose bwrap ``mounts`` the judge lists once)."""
        packages = packages or AllowedPackages()
        if not bwrap_available():
            raise VerifierUnavailable("bubblewrap (bwrap) is not available or cannot create its namespaces here: "
                                      "without it a program could read the host's files (tests, answers); "
                                      "install the 'bubblewrap' package")
        ours, theirs = socket.socketpair()
        self._stderr = tempfile.TemporaryFile()
        lib = ["--ro-bind", str(_LIB / "zygote.py"), f"{LIB_IN_SANDBOX}/zygote.py",
               "--ro-bind", str(_LIB / "wire.py"), f"{LIB_IN_SANDBOX}/wire.py"]
        site = [SITE_IN_SANDBOX] if packages.paths else []
        try:
            cmd = [*bwrap_base([*mounts, *lib]), "--setenv", "PASSK_DROP_UID", "1", "--setenv", "PASSK_PIDNS", "1",
                   "--chdir", "/", sandbox_python(), "-I", "-B", f"{LIB_IN_SANDBOX}/zygote.py", _WORK_IN_SANDBOX,
                   *site]
        except (OSError, subprocess.SubprocessError) as exc:
            raise VerifierUnavailable(f"cannot list what the sandbox needs of this Python: {exc}") from exc
        env = {"PATH": "/usr/bin:/bin"}
        try:
            # the spawner's thread forks bwrap: its --die-with-parent follows the process, not this thread
            self._proc = popen(cmd, stdin=theirs.fileno(), stdout=subprocess.DEVNULL,
                               stderr=self._stderr, env=env, start_new_session=True)
        except OSError as exc:
            raise VerifierUnavailable(f"cannot start the sandbox ({cmd[0]}): {exc}") from exc
        finally:
            theirs.close()
        self._sock = ours
        try:
            ready = self._recv(_START_TIMEOUT)
        except _Broken as exc:
            try:  # bwrap's own message, once it has exited
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
            cause = self.stderr() or "no output"
            self.close()
            raise VerifierUnavailable(f"the sandbox did not start: {exc}: {cause}") from None
        if not ready.get("ready"):
            self.close()
            raise VerifierUnavailable(f"the sandbox did not start: {ready}")

    def stderr(self) -> str:
        if self._stderr.closed:
            return ""
        self._stderr.seek(0)
        return self._stderr.read()[-2000:].decode("utf-8", "replace").strip()

    def _recv(self, timeout: float) -> dict[str, Any]:
        self._sock.settimeout(timeout)
        try:
            return wire.recv(self._sock)[0]
        except (OSError, EOFError, wire.WireError) as exc:
            raise _Broken(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None

    def fork(self, request: dict[str, Any], fds: list[int]) -> None:
        """Asks for the sample's process; ``forked`` waits for it (two sandboxes fork in parallel)."""
        try:
            wire.send(self._sock, {"op": "fork", **request}, fds)
        except OSError as exc:
            raise _Broken(str(exc)) from None

    def forked(self) -> None:
        reply = self._recv(_CONTROL_TIMEOUT)
        if "pid" not in reply:
            raise _Broken(str(reply.get("error", reply)))

    def wait_exit(self, timeout: float) -> Optional[list[Any]]:
        """The child's exit status, or None when it is still running after ``timeout`` seconds."""
        try:
            return self._recv(max(timeout, 0.001)).get("exited")
        except _Broken:  # a timeout, or a zygote the sample killed: reap() tells them apart
            return None

    def reap(self) -> None:
        """Kill what the sample left behind and wipe its directory; ``reaped`` gives its exit status."""
        try:
            wire.send(self._sock, {"op": "reap"})
        except OSError as exc:
            raise _Broken(str(exc)) from None

    def reaped(self) -> list[Any]:
        while True:
            reply = self._recv(_CONTROL_TIMEOUT)
            if "reaped" in reply:
                return list(reply["reaped"])

    def close(self) -> None:
        self._sock.close()  # a live zygote exits on EOF (its CPU time then counts in this process's rusage)
        try:
            self._proc.wait(2.0)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._proc.wait()
        self._stderr.close()


class _Session:
    """One forked process: its channel to this side, with per-call deadlines."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.broken = False

    def send(self, message: dict[str, Any]) -> None:
        if not self.broken:
            self.sock.settimeout(_CONTROL_TIMEOUT)
            try:
                wire.send(self.sock, message)
            except OSError:  # the other side is gone (or stopped reading): the next recv says "ended"
                self.broken = True

    def recv(self, deadline: float) -> tuple[str, dict[str, Any]]:
        """("ok", message), or ("timeout" | "ended" | "garbled", {}) for a channel that failed."""
        remaining = deadline - time.monotonic()
        if self.broken:
            return "ended", {}
        if remaining <= 0:
            return "timeout", {}
        self.sock.settimeout(remaining)
        try:
            return "ok", wire.recv(self.sock)[0]
        except (socket.timeout, TimeoutError):
            return "timeout", {}
        except (EOFError, ConnectionError, OSError):
            return "ended", {}
        except wire.WireError:
            return "garbled", {}


def _reason(failure: str) -> str:
    if failure.startswith("wrong_answer"):
        return "wrong_answer"
    if failure.startswith("timeout"):
        return "timeout"
    return "memory" if "MemoryError" in failure else "crashed"


def _failure_of(status: str, message: dict[str, Any]) -> str:
    if status == "timeout":
        return "timeout"
    if status == "ended":
        return "crash: the program ended"
    if status == "garbled":
        return "unserialisable return: malformed frame"
    if "u" in message:
        return "unserialisable return"
    return "crash: " + str(message.get("e", "no reply"))[:200]


def _canonical(message: dict[str, Any]) -> tuple[Any, Any]:
    """The return value and arguments of a call reply, rebuilt as plain data (WireError otherwise)."""
    return wire.from_tree(message.get("r")), wire.from_tree(message.get("a"))


# A program whose sandbox's zygote died under it (it signalled every process it could): whether its own
# process outlived the zygote long enough to answer is a race, so it fails whatever it answered.
_KILLED_ITS_SANDBOX = "crash: the program killed its sandbox"
_CRASH_MARK = b"\x00passk:failed"  # stands for a test without an output in answer keys


class Judge:
    """A candidate sandbox and a harness sandbox; ``judge`` decides one sample. Not thread-safe: one
    judge per worker thread."""

    def __init__(self, *, timeout_s: float = 10.0, memory_mb: int = 1024, allow_packages: Sequence[str] = ()) -> None:
        if timeout_s <= 0 or memory_mb < 64:
            raise ValueError(f"need timeout_s > 0 and memory_mb >= 64 (got {timeout_s}, {memory_mb})")
        self.timeout_s, self.memory_mb = timeout_s, memory_mb
        self.packages = resolve_packages(allow_packages)
        try:  # their mounts, listed once for every sandbox this judge starts
            self._mounts = self.packages.args()
        except (OSError, subprocess.SubprocessError) as exc:
            raise VerifierUnavailable(f"cannot list what the allowed packages need: {exc}") from exc
        self._zygotes: dict[str, Optional[Zygote]] = {"candidate": None, "harness": None}
        self.verifier = verifier_name(allow_packages)

    def __enter__(self) -> Judge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for role, z in self._zygotes.items():
            if z is not None:
                z.close()
            self._zygotes[role] = None

    def _zygote(self, role: str) -> Zygote:
        z = self._zygotes[role]
        if z is None:
            z = self._zygotes[role] = Zygote(self.packages, self._mounts)
        return z

    def _start(self, requests: dict[str, tuple[dict[str, Any], list[int]]]) -> None:
        """Forks the sample's processes, one per role's sandbox, in parallel; a zygote that fails before
        any sample code ran gets one restart, then the verifier is unavailable."""
        limits = {"timeout_s": self.timeout_s, "memory_mb": self.memory_mb, "max_procs": _MAX_PROCS}
        todo = list(requests)
        for attempt in range(2):
            broken: dict[str, str] = {}
            for role in todo:
                try:
                    self._zygote(role).fork({**limits, **requests[role][0]}, requests[role][1])
                except _Broken as exc:
                    broken[role] = str(exc)
            for role in todo:
                if role not in broken:
                    try:
                        self._zygote(role).forked()
                    except _Broken as exc:
                        broken[role] = str(exc)
            for role, cause in broken.items():
                z = self._zygotes[role]
                broken[role] = f"{cause}: {z.stderr() if z else ''}"
                if z is not None:
                    z.close()
                self._zygotes[role] = None
            if not broken:
                return
            if attempt:
                raise VerifierUnavailable(f"the {', '.join(broken)} sandbox cannot start a process: "
                                          + "; ".join(broken.values()))
            todo = list(broken)

    def _reap(self, roles: list[str]) -> dict[str, Optional[list[Any]]]:
        """Ends the sample in each role's sandbox; the exit statuses (None where the sample killed or
        stopped its zygote: a fresh one starts for the next sample)."""
        status: dict[str, Optional[list[Any]]] = {}
        for role in roles:
            z = self._zygotes[role]
            try:
                if z is not None:
                    z.reap()
            except _Broken:
                status[role] = None
        for role in roles:
            z = self._zygotes[role]
            if z is not None and role not in status:
                try:
                    status[role] = z.reaped()
                    continue
                except _Broken:
                    pass
            if z is not None:
                z.close()
            self._zygotes[role] = None
            status[role] = None
        return status

    def judge(self, problem: Problem, program: str) -> Verdict:
        if problem.kind == "code":
            assert problem.tests is not None and problem.entry_point is not None
            try:
                return self.check(program, problem.tests, problem.entry_point, problem.prompt)
            except IncompleteTests as exc:
                raise IncompleteTests(f"problem {problem.id!r}: {exc}") from None
        if problem.kind == "code_io":
            assert problem.entry_point is not None and problem.inputs is not None and problem.outputs is not None
            return self.function_io(program, problem.entry_point, problem.inputs, problem.outputs, problem.atol)
        if problem.kind == "code_stdio":
            assert problem.inputs is not None and problem.outputs is not None
            return self.stdio(program, problem.inputs, problem.outputs, problem.atol)
        raise ValueError(f"problem {problem.id!r}: kind {problem.kind!r} is not code")

    def _verdict(self, passed: int, total: int, failure: Optional[str], outputs: list[Any]) -> Verdict:
        ok = failure is None and passed == total
        reason = "passed" if ok else _reason((failure or "").split(": ", 1)[-1] if failure and failure.startswith(
            "test ") else failure or "")
        return Verdict(ok, reason, None, self.verifier, "" if ok else (failure or ""), tests_passed=passed,
                       tests_total=total, first_failure=failure, answer_key=wire.digest(outputs))

    def check(self, program: str, tests: str, entry_point: str, prompt: str = "") -> Verdict:
        """HumanEval's ``check(candidate)``: one test. The harness sandbox runs it with a proxy that
        talks straight to the candidate sandbox; this side only waits for the harness's report."""
        h_ours, h_theirs = socket.socketpair()
        link_h, link_c = socket.socketpair()  # harness <-> candidate: their only connection
        try:
            self._start({
                "harness": ({"mode": "harness", "prompt": prompt, "tests": tests, "entry": entry_point},
                            [h_theirs.fileno(), link_h.fileno()]),
                "candidate": ({"mode": "call", "source": program, "entry": entry_point}, [link_c.fileno()]),
            })
            # The program's time starts once its processes are forked: a sandbox (re)starting its
            # interpreter on a loaded machine is the verifier's time, not a timeout of the program.
            deadline = time.monotonic() + self.timeout_s
            for s in (h_theirs, link_h, link_c):
                s.close()
            status, report = _Session(h_ours).recv(deadline)
        finally:
            for s in (h_ours, h_theirs, link_h, link_c):
                s.close()
        reaped = self._reap(["candidate", "harness"])
        key = report.get("key")
        key = key if isinstance(key, str) and len(key) <= 64 else None
        failure: Optional[str] = None
        if status != "ok" or "done" not in report:
            failure = "timeout" if status == "timeout" else "crash: the tests' process ended"
        elif reaped["candidate"] is None:
            failure = _KILLED_ITS_SANDBOX
        if failure is not None:
            return Verdict(False, _reason(failure), None, self.verifier, failure, tests_passed=0, tests_total=1,
                           first_failure=failure)
        if report["done"] is True:
            return Verdict(True, "passed", None, self.verifier, tests_passed=1, tests_total=1, answer_key=key)
        if isinstance(report.get("missing"), str):
            name = report["missing"][:100]
            raise IncompleteTests(
                f"the tests call {name!r}, which neither the tests nor the prompt define and which is not the entry "
                f"point {entry_point!r}: pass the problem's prompt (check_code(..., prompt=PROMPT)), which defines "
                "the helpers its tests use; no verdict was given")
        failure = str(report.get("why"))[:300]
        return Verdict(False, _reason(failure), None, self.verifier, failure, tests_passed=0, tests_total=1,
                       first_failure=failure, answer_key=key)

    def function_io(self, program: str, entry_point: str, inputs: list[Any], outputs: list[Any],
                    atol: Optional[float] = None,
                    equal: Optional[Callable[[Any, Any], bool]] = None) -> Verdict:
        """Calls ``entry_point(*inputs[i])`` in one candidate process; each output compared here, with
        ``equal(got, expected)`` when given (plain data only reaches it), else ``values_equal``."""
        ours, theirs = socket.socketpair()
        got: list[Any] = []
        passed, failure = 0, None
        self._start({"candidate": ({"mode": "call", "source": program, "entry": entry_point}, [theirs.fileno()])})
        try:
            theirs.close()
            session = _Session(ours)
            status, ready = session.recv(time.monotonic() + self.timeout_s)
            dead = None if status == "ok" and ready.get("ready") else _failure_of(status, ready)
            for i, (args, expected) in enumerate(zip(inputs, outputs), 1):
                result = dead
                if dead is None:
                    session.send({"a": wire.to_tree(list(args))})
                    status, reply = session.recv(time.monotonic() + self.timeout_s)
                    try:
                        value = _canonical(reply)[0] if status == "ok" and "r" in reply else _CRASH_MARK
                    except wire.WireError:
                        status, reply, value = "ok", {"u": True}, _CRASH_MARK
                    got.append(value)
                    if value is _CRASH_MARK:
                        result = _failure_of(status, reply)
                        dead = result if status != "ok" else None
                    elif not (equal(value, expected) if equal else values_equal(value, expected, atol)):
                        result = f"wrong_answer: expected {preview(expected)}, got {preview(value)}"
                    else:
                        passed += 1
                else:
                    got.append(_CRASH_MARK)
                if result and failure is None:
                    failure = f"test {i}: {result}"
        finally:
            ours.close()
            theirs.close()
            reaped = self._reap(["candidate"])
        if reaped["candidate"] is None:
            passed, failure = 0, _KILLED_ITS_SANDBOX
        return self._verdict(passed, len(inputs), failure, got)

    def stdio(self, program: str, inputs: list[str], outputs: list[str], atol: Optional[float] = None) -> Verdict:
        """Runs the program once per input on stdin; its stdout compared here, token by token."""
        got: list[Any] = []
        passed, failure = 0, None
        for i, (text, expected) in enumerate(zip(inputs, outputs), 1):
            result, out = self._stdio_one(program, text)
            got.append(out.split() if result is None else _CRASH_MARK)  # keyed as compared: by token
            if result is None and not stdout_equal(out, expected, atol):
                result = f"wrong_answer: expected {preview(expected)}, got {preview(out)}"
            if result is None:
                passed += 1
            elif failure is None:
                failure = f"test {i}: {result}"
            if result == "timeout":  # a program that hangs once would hang on every test: stop here
                got += [_CRASH_MARK] * (len(inputs) - i)
                break
        return self._verdict(passed, len(inputs), failure, got)

    def _stdio_one(self, program: str, text: str) -> tuple[Optional[str], str]:
        files = [os.memfd_create(name, 0) for name in ("stdin", "stdout", "stderr")]
        try:
            os.write(files[0], text.encode())  # an input larger than one write still lands: memfds take all
            os.lseek(files[0], 0, os.SEEK_SET)
            self._start({"candidate": ({"mode": "stdio", "source": program}, files)})
            status = self._zygote("candidate").wait_exit(self.timeout_s)
            final = self._reap(["candidate"])["candidate"]
            if status is None and final is not None:
                return "timeout", ""
            status = status or final  # None: the program killed its own sandbox
            out = os.pread(files[1], _OUTPUT_LIMIT, 0).decode("utf-8", "replace")
            if status is None or status != ["exit", 0]:
                err = os.pread(files[2], 4000, 0).decode("utf-8", "replace").strip().splitlines()
                return "crash: " + (err[-1] if err else f"{status}")[:200], out
            return None, out
        finally:
            for fd in files:
                os.close(fd)
