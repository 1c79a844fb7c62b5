"""The package allowlist: which installed packages, besides the standard library, a sandbox sees.

``--allow-package NAME`` takes a distribution name (``scikit-learn``) or a top-level import name
(``sklearn``). Each allowed distribution is shown with what it needs to import: its files from its
RECORD (package folders, modules, the ``.libs`` folder of vendored libraries, its .dist-info for
``importlib.metadata``), the distributions it requires (Requires-Dist without an extra, where
installed: pandas brings numpy, python-dateutil, pytz, tzdata, six) and the shared libraries their
extension modules link. Everything is bound read-only under ``mounts.SITE_IN_SANDBOX``; nothing
else of any site-packages is visible. The resolved set (names and versions) is what runs record.
"""

from __future__ import annotations

import functools
import importlib.metadata as metadata
import importlib.util
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from passkcore.verify.mounts import SITE_IN_SANDBOX, View, shared_libraries, system_view

_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_WHOLE = (".dist-info", ".egg-info", ".libs", ".data")  # folders bound whole, never namespaces


@dataclass(frozen=True)
class AllowedPackages:
    """The resolved allowlist: requested names, every distribution shown (with versions), the
    top-level modules of the requested ones, and the host paths bound into the sandbox's site."""

    requested: tuple[str, ...] = ()
    distributions: tuple[tuple[str, str], ...] = ()
    modules: tuple[str, ...] = ()
    paths: tuple[tuple[str, str], ...] = ()  # (host path, path relative to the sandbox's site)

    def names(self) -> list[str]:
        return [name for name, _ in self.distributions]

    def record(self) -> dict[str, object]:
        """What a run manifest stores: what its candidates could import besides the stdlib."""
        return {"allow_packages": list(self.requested),
                "packages": dict(self.distributions)}

    def args(self) -> list[str]:
        """bwrap arguments that show these packages, after the system's (none for the stdlib only)."""
        return self.view().args(system_view()) if self.paths else []

    def view(self) -> View:
        view = View()
        for host, rel in self.paths:
            view.show(host, at=f"{SITE_IN_SANDBOX}/{rel}")
        extensions = [os.path.join(root, f) for host, _ in self.paths if os.path.isdir(host)
                      for root, _, files in os.walk(host) for f in files if f.endswith(".so") or ".so." in f]
        extensions += [host for host, _ in self.paths if os.path.isfile(host) and host.endswith(".so")]
        own = [os.path.realpath(host) for host, _ in self.paths]
        for lib in _libraries(tuple(sorted(extensions))):
            # Vendored libraries come with their package (RPATH $ORIGIN/../x.libs); other site-packages stay hidden.
            real = os.path.realpath(lib)
            if not any(real.startswith(o + "/") for o in own) and "-packages/" not in real:
                view.show(lib)
        return view


@functools.lru_cache(maxsize=16)
def _libraries(files: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(shared_libraries(list(files)))


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _find(name: str) -> list[metadata.Distribution]:
    try:
        return [metadata.distribution(name)]
    except metadata.PackageNotFoundError:
        pass
    found = []
    for dist_name in metadata.packages_distributions().get(name, []):
        try:
            found.append(metadata.distribution(dist_name))
        except metadata.PackageNotFoundError:
            continue
    return found


def _requirements(dist: metadata.Distribution) -> list[str]:
    names = []
    for requirement in dist.requires or []:
        spec, _, marker = requirement.partition(";")
        match = _REQUIREMENT.match(spec)
        if match and "extra" not in marker:
            names.append(match.group(1))
    return names


def _tops(dist: metadata.Distribution) -> dict[str, str]:
    """Relative path in the sandbox's site -> host path, for the files a distribution installed."""
    files = [str(f) for f in (dist.files or [])]
    inits = {f.split("/")[0] for f in files if f.count("/") == 1 and f.endswith("/__init__.py")}
    out: dict[str, str] = {}
    for f in files:
        parts = f.split("/")
        top = parts[0]
        if top in ("..", "__pycache__", "") or top.endswith(".pth") or top.startswith("__editable__"):
            continue
        rel = top
        if len(parts) > 2 and top not in inits and not top.endswith(_WHOLE) and parts[1] != "__pycache__":
            rel = f"{top}/{parts[1]}"  # a namespace package shared with other distributions: only its own part
        host = str(dist.locate_file(rel))
        if os.path.exists(host):
            out[rel] = host
    # An editable install (passkcore's own checkout, say) has no files in site-packages: its modules.
    for module in (dist.read_text("top_level.txt") or "").split() or [_normal(dist.metadata["Name"]).replace("-", "_")]:
        if module not in out and f"{module}.py" not in out:
            spec = importlib.util.find_spec(module) if module.isidentifier() else None
            if spec is not None and spec.submodule_search_locations:
                out[module] = list(spec.submodule_search_locations)[0]
            elif spec is not None and spec.origin and os.path.isfile(spec.origin):
                out[os.path.basename(spec.origin)] = spec.origin
    return out


def _modules(tops: dict[str, str]) -> list[str]:
    names = set()
    for rel in tops:
        top = rel.split("/")[0]
        if top.endswith(_WHOLE) or top.startswith("_"):
            continue
        names.add(top.split(".")[0] if top.endswith((".py", ".so")) else top)
    return sorted(n for n in names if n.isidentifier())


@functools.lru_cache(maxsize=16)
def _resolve(names: tuple[str, ...]) -> AllowedPackages:
    seen: dict[str, metadata.Distribution] = {}
    modules: list[str] = []
    todo: list[tuple[str, bool]] = [(name, True) for name in names]
    while todo:
        name, requested = todo.pop(0)
        dists = _find(name)
        if not dists:
            if requested:
                raise ValueError(f"allow_packages: {name!r} is not installed in this Python ({sys.executable})")
            continue  # an optional or platform-specific requirement that is not installed
        for dist in dists:
            key = _normal(dist.metadata["Name"])
            if requested:
                modules += _modules(_tops(dist))
            if key not in seen:
                seen[key] = dist
                todo += [(req, False) for req in _requirements(dist)]
    paths: dict[str, str] = {}
    for dist in seen.values():
        paths.update(_tops(dist))
    return AllowedPackages(names, tuple(sorted((k, d.version) for k, d in seen.items())),
                           tuple(sorted(set(modules))), tuple(sorted((h, r) for r, h in paths.items())))


def resolve_packages(names: Sequence[str]) -> AllowedPackages:
    """The allowlist for these names (ValueError naming the offending entry for a bad or missing
    name, or a standard-library module, which every sandbox has anyway)."""
    if isinstance(names, str):
        raise TypeError("allow_packages must be a list of package names, not a string")
    for i, name in enumerate(names):
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"allow_packages[{i}]: {name!r} is not a package name")
        if name in sys.stdlib_module_names:
            raise ValueError(f"allow_packages[{i}]: {name!r} is in the standard library, which every sandbox has")
    return _resolve(tuple(sorted({_normal(n) if _find(n) else n for n in names})))
