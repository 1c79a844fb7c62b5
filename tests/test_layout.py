"""The package layout keeps its direction: no import circles among passkcore's modules, and neither the
numbers nor the engines import the pipeline (or anything above it). Imports are read with ast, lazy
ones inside functions included, so a circle cannot hide in a function body."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "passkcore"
# Modules that sit above the engines: nothing at or below the engines may import them.
ABOVE = ("passkcore.pipeline", "passkcore.importers", "passkcore.analysis", "passkcore.report", "passkcore.cli",
         "passkcore.demo", "passkcore.integrations", "passkcore.audit")
ENGINES = ("passkcore.sampling", "passkcore.scoring", "passkcore.pooled", "passkcore.verify", "passkcore.kernels",
           "passkcore.models", "passkcore.templates", "passkcore.problems", "passkcore.problem_files",
           "passkcore.varlen")
# The numbers import the native core (and their own package) only.
NUMBERS_MAY_IMPORT = ("passkcore.numbers", "passkcore._native", "passkcore._core")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    kernels = ROOT / "kernels"  # shipped as passkcore.kernels
    found.update({"passkcore.kernels" + module_name(p)[len("kernels"):]: p for p in kernels.rglob("*.py")})
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The passkcore modules ``name`` imports (``from pkg import module`` counts as the module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("passkcore"))
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join([*base, node.module] if node.module else base) if node.level else (node.module or "")
            if not target.startswith("passkcore"):
                continue
            submodules = {f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known}
            out.update(submodules)
            if len(submodules) < len(node.names):  # names of the module itself, not only its submodules
                out.add(target)
    # `import passkcore.x.y` also runs passkcore.x: only the module named is an edge here.
    return {m for m in out if m != name and m != "passkcore"}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {m for m in imports(name, path, known) if m in known} for name, path in known.items()}


def test_the_graph_sees_lazy_imports() -> None:
    edges = graph()
    assert "passkcore.pipeline.store" in edges["passkcore.analysis"]  # a module-level import
    assert "passkcore.verify" in edges["passkcore.pipeline.stages"]  # one inside a method


def test_no_import_circles() -> None:
    edges = graph()
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                circles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert circles == []


def test_numbers_import_the_core_only() -> None:
    edges = graph()
    numbers = [n for n in edges if n.startswith("passkcore.numbers")]
    assert len(numbers) >= 8
    bad = {n: sorted(m for m in edges[n] if not m.startswith(NUMBERS_MAY_IMPORT)) for n in numbers}
    assert {n: m for n, m in bad.items() if m} == {}


def test_engines_import_nothing_above_them() -> None:
    edges = graph()
    engines = [n for n in edges if n.startswith(ENGINES)]
    assert "passkcore.scoring" in engines and "passkcore.verify.judge" in engines
    bad = {n: sorted(m for m in edges[n] if m.startswith(ABOVE)) for n in engines}
    assert {n: m for n, m in bad.items() if m} == {}


def test_the_wrappers_are_gone() -> None:
    for old in ("runs", "distributed", "store", "cli_run", "cli_import", "metric_report", "counts", "estimate"):
        assert not (PACKAGE / f"{old}.py").exists(), old


def test_public_api_keeps_its_paths() -> None:
    import importlib

    import passkcore

    for name in passkcore.__all__:
        assert getattr(passkcore, name) is not None, name
    paths = {"passkcore": ["SampleStore", "Scorer"], "passkcore.pipeline": ["SampleStore"],
             "passkcore.scoring": ["Scorer"], "passkcore.verify": ["check_code", "verify_rows"],
             "passkcore.verify.judge": ["Judge"], "passkcore.problems": ["Problem"],
             "passkcore.models": ["resolve_model"], "passkcore.kernels": ["token_logprobs"]}
    for module, names in paths.items():
        for name in names:
            assert callable(getattr(importlib.import_module(module), name)), f"{module}.{name}"
    assert passkcore.SampleStore is importlib.import_module("passkcore.pipeline").SampleStore
    assert passkcore.Scorer is importlib.import_module("passkcore.scoring").Scorer


def test_import_passkcore_loads_neither_pipeline_nor_scorer() -> None:
    """Every engine process vLLM spawns imports passkcore: the store and the scorer load on first use."""
    import subprocess
    import sys

    code = ("import sys, passkcore\n"
            "print(sorted(m for m in sys.modules if m.startswith(('passkcore.pipeline', 'passkcore.scoring'))))\n"
            "from passkcore import SampleStore\n"
            "print(SampleStore.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[:2] == ["[]", "passkcore.pipeline.store"]
