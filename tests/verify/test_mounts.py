"""The sandbox's view of the host (mounts.py) in every install layout CI can build: this machine's
interpreter (pyenv under a 0700 /root), a venv under /tmp (test_judge.py), the system Python under /usr
and a conda-style prefix (its own lib/ with libpython found through $ORIGIN, the stdlib's own
site-packages holding a dataset) under a 0700 folder. Each verifies, and sees nothing else."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from passkcore.verify.mounts import View, sandbox_python, system_view

SCRIPT = """
import json, site, sys
site.addsitedir({site_packages!r})
from passkcore.problems import Problem
from passkcore.verify import verify_rows
from passkcore.verify.mounts import sandbox_python
assert sandbox_python().startswith({expect_python!r}), sandbox_python()
problems = {{"p": Problem("p", "def add(a, b):\\n", "code", entry_point="add",
                         tests="def check(candidate):\\n    assert candidate(1, 2) == 3\\n")}}
steal = "def add(a, b):\\n    try:\\n        return int(open({secret!r}).read())\\n    except OSError:\\n        return a - b\\n"
rows = [{{"problem_id": "p", "response": "def add(a, b):\\n    return a + b\\n"}},
        {{"problem_id": "p", "response": "def add(a, b):\\n    return a - b\\n"}},
        {{"problem_id": "p", "response": steal}}]
print(json.dumps([v.reason for v in verify_rows(rows, problems, workers=1)]))
"""


def _verify_with(python: str, expect_python: str, secret: str, cwd: Path) -> list[str]:
    script = textwrap.dedent(SCRIPT).format(site_packages=sysconfig.get_paths()["purelib"], expect_python=expect_python,
                                            secret=secret)
    out = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=600, cwd=cwd)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _secret(folder: Path) -> str:
    """An answer file ("3") readable by everyone: the stealing program passes if it can open it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "answer.txt"
    path.write_text("3")
    path.chmod(0o644)
    return str(path)


def test_this_interpreter_and_nothing_else(tmp_path: Path) -> None:
    args = system_view().args()
    python = sandbox_python()
    assert python in args and os.path.realpath(sysconfig.get_paths()["stdlib"]) in args
    binds = {args[i + 2] for i, a in enumerate(args) if a == "--ro-bind"}
    for forbidden in ("/", "/root", "/work", "/home", "/srv", "/opt", "/var", "/mnt", os.getcwd(), sys.prefix,
                      sysconfig.get_paths()["purelib"]):
        assert forbidden not in binds, forbidden
    for path in binds:  # only the interpreter, stdlib folders and shared libraries (and the loader's cache)
        assert path == python or path.startswith(sys.base_prefix) or ".so" in path or path == "/etc/ld.so.cache", path


def test_symlinked_paths_resolve_as_on_the_host(tmp_path: Path) -> None:
    real = tmp_path / "real" / "lib"
    real.mkdir(parents=True)
    (real / "libx.so.1.2").write_text("")
    (real / "libx.so.1").symlink_to("libx.so.1.2")
    (tmp_path / "lib").symlink_to("real/lib")
    view = View()
    view.show(str(tmp_path / "lib" / "libx.so.1"))
    assert view.links == {str(tmp_path / "lib"): "real/lib", str(real / "libx.so.1"): "libx.so.1.2"}
    assert view.binds == {str(real / "libx.so.1.2"): str(real / "libx.so.1.2")}
    args = view.args()
    # Folders above are made traversable (0755) before the symlinks and the bind that need them.
    at = args.index(str(tmp_path))
    assert args[at - 3:at + 1] == ["--perms", "0755", "--dir", str(tmp_path)]
    assert at < args.index("--symlink") < args.index("--ro-bind")


@pytest.mark.slow
@pytest.mark.skipif(not os.access("/usr/bin/python3.11", os.X_OK), reason="no system Python 3.11 on this machine")
def test_system_python_under_usr(tmp_path: Path) -> None:
    secret = _secret(Path("/var/tmp") / f"passk-secret-{os.getpid()}")
    try:
        assert _verify_with("/usr/bin/python3.11", "/usr/", secret, tmp_path) == ["passed", "wrong_answer", "wrong_answer"]
    finally:
        shutil.rmtree(os.path.dirname(secret), ignore_errors=True)


def _conda_prefix(root: Path) -> Path:
    """A self-contained prefix as conda lays one out: bin/python3.X finding lib/libpython3.X.so through
    $ORIGIN/../lib, the stdlib in lib/python3.X with its own site-packages inside."""
    base = Path(sys.base_prefix)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    prefix = root / "conda"
    (prefix / "bin").mkdir(parents=True)
    binary = prefix / "bin" / version
    shutil.copy2(os.path.realpath(sandbox_python()), binary)
    libs = list((base / "lib").glob(f"libpython{sys.version_info.major}.{sys.version_info.minor}*.so*"))
    (prefix / "lib").mkdir()
    for lib in libs:
        shutil.copy2(lib, prefix / "lib" / lib.name, follow_symlinks=True)
    runpath = str(base / "lib").encode() + b"\0"
    data = binary.read_bytes()
    if libs and data.count(runpath) == 1:  # an absolute RUNPATH to the base prefix: point it at $ORIGIN, as conda does
        binary.write_bytes(data.replace(runpath, b"$ORIGIN/../lib".ljust(len(runpath), b"\0")))
    binary.chmod(0o755)
    ignore = shutil.ignore_patterns("site-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "*.opt-1.pyc",
                                    "*.opt-2.pyc")
    shutil.copytree(base / "lib" / version, prefix / "lib" / version, ignore=ignore, symlinks=True)
    (prefix / "lib" / version / "site-packages").mkdir()
    return prefix


@pytest.mark.slow
def test_conda_style_prefix_under_a_closed_folder(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir()
    prefix = _conda_prefix(closed)
    closed.chmod(0o700)  # as /root is here: nobody cannot cross it on the host
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    dataset = prefix / "lib" / version / "site-packages" / "some_benchmark"
    secret = _secret(dataset)
    for p in (prefix, prefix / "lib", prefix / "lib" / version, dataset.parent, dataset):
        p.chmod(p.stat().st_mode | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    python = str(prefix / "bin" / version)
    ldd = subprocess.run(["ldd", python], capture_output=True, text=True, check=False).stdout
    if "libpython" in ldd:  # the copy loads its own libpython, as a conda prefix does
        assert any(os.path.normpath(word).startswith(str(prefix / "lib")) for word in ldd.split()), ldd
    assert _verify_with(python, str(prefix), secret, tmp_path) == ["passed", "wrong_answer", "wrong_answer"]


def test_a_launcher_script_is_not_the_sandbox_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shim = tmp_path / "python3"
    shim.write_text("#!/usr/bin/env bash\nexec python3 \"$@\"\n")  # what a pyenv shim is
    shim.chmod(0o755)
    monkeypatch.setattr(sys, "_base_executable", str(shim), raising=False)
    assert sandbox_python() == os.path.realpath(sys.executable)
    with open(sandbox_python(), "rb") as fh:
        assert fh.read(4) == b"\x7fELF"
