"""What a sandbox sees of the host: the interpreter, its standard library and the shared libraries
they load, read-only, and nothing else (no home folders, project checkout, run directory, problem file
or site-packages); allowlisted packages (packages.py) under ``SITE_IN_SANDBOX``.

The view is built from the host's real paths: the base interpreter's binary (a venv's ``bin/python``
is a symlink or copy of it; the venv itself, with its site-packages, stays outside), the stdlib and
lib-dynload folders from sysconfig and sys.path, and every library ``ldd`` lists for the binary,
libpython and each lib-dynload module (one ldd call, ~0.4 s of CPU here, once per process). Each
path is made to resolve inside the sandbox as on the host: a symlink among its components
(``/lib -> usr/lib``, ``libz.so.1 -> libz.so.1.2.13``) becomes the same symlink there, the final file
or folder is bound read-only, and every folder above a bound path is created with mode 0755, so an
interpreter under a 0700 /root (pyenv) is importable by nobody while /root shows nothing else.
Site-packages folders inside a bound stdlib (pyenv, conda: ``lib/python3.X/site-packages``) are
covered by an empty read-only tmpfs.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterable, Sequence
from typing import Optional

LIB_IN_SANDBOX = "/passk/lib"  # the zygote's own two files (zygote.py, wire.py)
SITE_IN_SANDBOX = "/passk/site"  # allowlisted packages, on the sandbox's sys.path
_LDD_TIMEOUT = 120.0  # s: ~3 s here for ~70 files on a loaded machine


def sandbox_python() -> str:
    """The real binary of the base interpreter: what the sandboxes run. A venv's ``bin/python`` (a
    symlink or a copy) would read its pyvenv.cfg and add the venv's site-packages."""
    if not os.path.isfile(sys.executable):
        return sys.executable  # gone (or never there): starting the sandbox fails, naming it
    base = getattr(sys, "_base_executable", None)
    if base and os.path.isfile(base) and _is_elf(base):  # not a launcher script (a pyenv shim is bash)
        return os.path.realpath(base)
    return os.path.realpath(sys.executable)


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"\x7fELF"
    except OSError:
        return False


def _under(path: str, folders: Iterable[str]) -> bool:
    return any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders)


class View:
    """bwrap arguments that make host paths resolve inside the sandbox as they do on the host."""

    def __init__(self) -> None:
        self.links: dict[str, str] = {}
        self.binds: dict[str, str] = {}  # destination -> host source (a real path)
        self.hidden: set[str] = set()

    def show(self, path: str, at: Optional[str] = None, _depth: int = 0) -> None:
        """Makes ``path`` visible (at ``at`` if given, a folder of the sandbox's own: the packages' site)."""
        if at is not None:
            self.binds[at] = os.path.realpath(path)
            return
        if _depth > 40:  # a symlink loop (the kernel gives up after 40 as well)
            return
        parts = (path if path.startswith("/") else os.path.abspath(path)).split("/")
        current = "/"
        for i, part in enumerate(parts):
            if part in ("", "."):
                continue
            if part == "..":  # after a real folder, as the kernel resolves it (ldd prints bin/../lib)
                current = os.path.dirname(current)
                continue
            following = os.path.join(current, part)
            if os.path.islink(following):
                target = os.readlink(following)
                self.links[following] = target
                rest = "/".join(parts[i + 1:])
                resolved = os.path.join(current, target)
                self.show(f"{resolved}/{rest}" if rest else resolved, _depth=_depth + 1)
                return
            current = following
        if os.path.exists(current):
            self.binds[current] = current

    def hide(self, folder: str) -> None:
        """Covers a folder inside a bound one with an empty read-only tmpfs."""
        self.hidden.add(folder)

    def args(self, present: Optional[View] = None) -> list[str]:
        """The arguments, after those of ``present`` (a view already on the command line: the system's)."""
        before = present or View()
        binds = {**before.binds, **self.binds}
        # A bind inside a bound folder is there already (and its mount point could not be made).
        outer: list[str] = []
        for dest in sorted(binds, key=len):
            if not _under(dest, outer):
                outer.append(dest)
        own = [d for d in outer if d not in before.binds]
        links = {k: v for k, v in self.links.items() if k not in before.links and not _under(k, outer)}
        made = _ancestors([d for d in outer if d in before.binds] + list(before.links), outer)
        folders = _ancestors([*own, *links], outer) - made
        args: list[str] = []
        for folder in sorted(folders, key=lambda f: (f.count("/"), f)):
            args += ["--perms", "0755", "--dir", folder]
        for link, target in sorted(links.items()):
            args += ["--symlink", target, link]
        for dest in sorted(own, key=lambda d: (d.count("/"), d)):
            args += ["--ro-bind", binds[dest], dest]
        for folder in sorted(self.hidden):
            if _under(folder, outer) and os.path.isdir(folder):
                args += ["--perms", "0555", "--tmpfs", folder, "--remount-ro", folder]
        return args


def _ancestors(paths: Iterable[str], outer: Sequence[str]) -> set[str]:
    folders: set[str] = set()
    for path in paths:
        parent = os.path.dirname(path)
        while parent != "/" and not _under(parent, outer):
            folders.add(parent)
            parent = os.path.dirname(parent)
    return folders


def shared_libraries(files: Sequence[str]) -> list[str]:
    """Every library ``ldd`` resolves for these ELF files (the loader included), as ldd prints them;
    without ldd, those a started interpreter maps after importing the extension modules."""
    ldd = shutil.which("ldd")
    if not files:
        return []
    if ldd is None:
        return _mapped_libraries()
    out = subprocess.run([ldd, *files], capture_output=True, text=True, timeout=_LDD_TIMEOUT, check=False,
                         env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"}).stdout
    libs: set[str] = set()
    for line in out.splitlines():
        left, arrow, right = line.strip().partition("=>")
        path = (right if arrow else left).strip().split(" (")[0].strip()
        if path.startswith("/") and not line.strip().endswith(":"):
            libs.add(path)
    return sorted(libs)


def _mapped_libraries() -> list[str]:
    code = ("import sys, os, importlib\n"
            "for d in sys.path:\n"
            "    if d.endswith('lib-dynload') and os.path.isdir(d):\n"
            "        for f in os.listdir(d):\n"
            "            try: importlib.import_module(f.split('.')[0])\n"
            "            except Exception: pass\n"
            "print('\\n'.join(sorted({l.split(None, 5)[5] for l in open('/proc/self/maps') if l.count(' ') >= 5"
            " and '/' in l})))\n")
    out = subprocess.run([sandbox_python(), "-I", "-S", "-c", code], capture_output=True, text=True, timeout=_LDD_TIMEOUT,
                         check=False, stdin=subprocess.DEVNULL).stdout
    return sorted(line.strip() for line in out.splitlines() if line.strip().startswith("/") and ".so" in line)


def _stdlib_folders() -> tuple[list[str], list[str]]:
    """The base interpreter's stdlib folders (stdlib, platstdlib, lib-dynload, the zip) and the
    site-packages folders that might lie inside them."""
    base = {"base": sys.base_prefix, "platbase": sys.base_exec_prefix, "installed_base": sys.base_prefix,
            "installed_platbase": sys.base_exec_prefix}
    paths = sysconfig.get_paths(vars=base)
    stdlib = {paths["stdlib"], paths["platstdlib"]}
    stdlib.update(p for p in sys.path if p.endswith("lib-dynload") or p.endswith(".zip"))
    stdlib = {os.path.realpath(p) for p in stdlib if p and os.path.exists(p)}
    sites = {paths["purelib"], paths["platlib"], *sys.path}
    sites = {os.path.realpath(p) for p in sites if p} - stdlib
    return sorted(stdlib), sorted(sites)


def _extension_modules(folders: Sequence[str]) -> list[str]:
    found = []
    for folder in folders:
        if os.path.isdir(folder) and folder.endswith("lib-dynload"):
            found += [os.path.join(folder, f) for f in sorted(os.listdir(folder)) if f.endswith(".so")]
    return found


@functools.lru_cache(maxsize=4)
def _system_paths(python: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    stdlib, sites = _stdlib_folders()
    libs = shared_libraries([python, *_extension_modules(stdlib)])
    return tuple(stdlib), tuple(libs), tuple(sites)


def system_view() -> View:
    """The interpreter, its stdlib (site-packages hidden) and its shared libraries."""
    return _system_view(sandbox_python())


def system_args() -> list[str]:
    """``system_view().args()``, built once per interpreter (~7 ms each time here: two sandboxes start
    per judge)."""
    return list(_system_args(sandbox_python()))


@functools.lru_cache(maxsize=4)
def _system_args(python: str) -> tuple[str, ...]:
    return tuple(_system_view(python).args())


@functools.lru_cache(maxsize=4)
def _system_view(python: str) -> View:
    stdlib, libs, sites = _system_paths(python)
    view = View()
    for path in (python, *stdlib, *libs):
        view.show(path)
    for folder in sites:
        view.hide(folder)
    if os.path.isfile("/etc/ld.so.cache"):  # where the loader finds libraries outside its default folders
        view.show("/etc/ld.so.cache")
    return view
