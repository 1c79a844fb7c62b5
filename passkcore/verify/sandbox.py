"""A sandboxed subprocess for untrusted programs (the bubblewrap command line shared by every sandbox).

``run_sandboxed`` is the one-process design verdicts used before passkcore.verify.judge: the program
and its tests in one process, "passed" a nonce line it prints. It stays as a general runner and as the
baseline of benches/test_verify.py; no verdict depends on it.

Layers: bubblewrap (a root holding only the interpreter, its standard library and shared libraries,
read-only (mounts.py), private /tmp, /proc and /dev, no network, own pid/ipc/uts namespaces, a
cleared environment, dies with its parent); the work directory as HOME and cwd; rlimits
on CPU time, address space, file size, open files and processes; the program drops root to nobody
(65534) first, because RLIMIT_NPROC is ignored for root (measured here: a fork storm stopped at ~62
processes only after the drop); output goes to size-limited files, never into this process's memory;
a wall-clock timeout kills the whole process group. Without bubblewrap the rlimits, uid drop,
cleared environment and timeout still hold, but there is no network or filesystem isolation: a
warning says so once.
"""

from __future__ import annotations

import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from passkcore.verify.mounts import sandbox_python, system_args
from passkcore.verify.spawner import popen

_RUNNER = Path(__file__).with_name("_runner.py")
_NOBODY = 65534
_OUTPUT_LIMIT = 16 * 2**20  # per file: stdout, stderr and anything the program writes


class SandboxWarning(UserWarning):
    """The machine has no bubblewrap: programs run without network and filesystem isolation."""


@dataclass(frozen=True)
class SandboxResult:
    status: str  # "ok", "assertion", "memory", "exception", "exit", "timeout", "killed"
    exit_code: Optional[int]
    stdout: str
    stderr: str


_warned = False
_bwrap_ok: Optional[bool] = None


def bwrap_available() -> bool:
    """Whether bubblewrap is installed and can create its namespaces here (checked once)."""
    global _bwrap_ok
    if _bwrap_ok is None:
        exe = shutil.which("bwrap")
        _bwrap_ok = exe is not None and subprocess.run(
            [exe, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "--die-with-parent", "true"],
            capture_output=True, timeout=30, check=False).returncode == 0
    return _bwrap_ok


def _limits(timeout_s: float, memory_mb: int, max_procs: int) -> None:
    """Runs in the child between fork and exec."""
    cpu = int(timeout_s) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))
    resource.setrlimit(resource.RLIMIT_FSIZE, (_OUTPUT_LIMIT, _OUTPUT_LIMIT))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    resource.setrlimit(resource.RLIMIT_NPROC, (max_procs, max_procs))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _python_roots() -> list[Path]:
    """The folders the interpreter reads its standard library from."""
    roots = {Path(sys.base_prefix).resolve(), Path(sys.executable).resolve().parent.parent}
    return sorted(roots)


def _closed_ancestor(path: Path) -> Optional[Path]:
    """The first ancestor that others cannot traverse (pyenv under a 0700 /root, say): after the
    program drops to nobody, Python could not import its own standard library through it."""
    for parent in reversed(path.parents):
        if parent != Path("/") and not os.stat(parent).st_mode & 0o001:
            return parent
    return None


def nobody_can_read_python() -> bool:
    return all(_closed_ancestor(root) is None for root in _python_roots())


def bwrap_base(extra: Sequence[str] = ()) -> list[str]:
    """The bubblewrap command line up to the program: private /dev, /proc and /tmp; the minimal
    system of mounts.system_view (the interpreter, its stdlib and shared libraries, read-only);
    ``extra`` mounts (allowlisted packages: packages.AllowedPackages.view); the rest of the root
    empty and read-only; no network, own pid/ipc/uts namespaces, a cleared environment."""
    return [
        "bwrap", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", *system_args(), *extra,
        "--remount-ro", "/",
        "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--new-session",
        "--clearenv", "--setenv", "PATH", "/usr/bin:/bin",
    ]


def warn_unisolated() -> None:
    global _warned
    if not _warned:
        warnings.warn(SandboxWarning("bubblewrap (bwrap) is not available: sandboxed programs run with rlimits, "
                                     "a dropped uid and a cleared environment, but WITHOUT network or filesystem "
                                     "isolation; install the 'bubblewrap' package"), stacklevel=4)
        _warned = True


def _command(workdir: Path) -> list[str]:
    if bwrap_available():
        python = [sandbox_python(), "-I", "-B", str(workdir / "_runner.py")]
        return [*bwrap_base(["--bind", str(workdir), str(workdir)]), "--setenv", "HOME", str(workdir),
                "--setenv", "PASSK_DROP_UID", "1", "--chdir", str(workdir), *python]
    warn_unisolated()
    return [sys.executable, "-I", "-B", str(workdir / "_runner.py")]


def _read_tail(path: Path, limit: int = 4000) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - limit))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def run_sandboxed(source: str, *, timeout_s: float = 10.0, memory_mb: int = 1024, max_procs: int = 64) -> SandboxResult:
    """Runs ``source`` as a Python program in the sandbox and reports how it ended."""
    if timeout_s <= 0 or memory_mb < 64:
        raise ValueError(f"need timeout_s > 0 and memory_mb >= 64 (got {timeout_s}, {memory_mb})")
    workdir = Path(tempfile.mkdtemp(prefix="passk-sandbox-"))
    try:
        (workdir / "main.py").write_text(source)
        shutil.copyfile(_RUNNER, workdir / "_runner.py")
        if os.getuid() == 0:  # the program runs as nobody: it owns its work directory and nothing else
            for path in (workdir, workdir / "main.py", workdir / "_runner.py"):
                os.chown(path, _NOBODY, _NOBODY)
        os.chmod(workdir, 0o700)
        nonce = secrets.token_hex(16)
        out_path, err_path = workdir / ".stdout", workdir / ".stderr"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            # Without bwrap the drop to nobody only happens where nobody can still read Python.
            drop = "1" if nobody_can_read_python() else "0"
            proc = popen(  # from the spawner thread: --die-with-parent then follows the process
                _command(workdir), stdin=subprocess.PIPE, stdout=out, stderr=err, cwd=workdir,
                env={"PATH": "/usr/bin:/bin", "HOME": str(workdir), "PASSK_DROP_UID": drop},
                start_new_session=True,
                preexec_fn=lambda: _limits(timeout_s, memory_mb, max_procs),
            )
            timed_out = False
            try:
                assert proc.stdin is not None
                proc.stdin.write((nonce + "\n").encode())
                proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # the whole group, whatever it spawned
                except ProcessLookupError:
                    pass
                proc.wait()
        stdout, stderr = _read_tail(out_path), _read_tail(err_path)
        code = proc.returncode
        if timed_out:
            return SandboxResult("timeout", code, stdout, stderr)
        if code == 0 and f"PASSK-OK {nonce}" in stdout:
            return SandboxResult("ok", code, stdout, stderr)
        signum = -code if code < 0 else (code - 128 if code > 128 else 0)
        if signum in (signal.SIGXCPU, signal.SIGKILL):
            return SandboxResult("timeout", code, stdout, stderr)
        status = {3: "assertion", 4: "memory", 5: "exception", 6: "exit", 0: "exit"}.get(code, "killed")
        return SandboxResult(status, code, stdout, stderr)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
