"""Packaging: the compiled core imports from anywhere, kernels ships inside passkcore only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import passkcore
from tests.conftest import ROOT


def _run(code: str, cwd: Path) -> str:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, check=True, capture_output=True, text=True).stdout


def test_core_imports_from_repo_root_and_elsewhere(tmp_path: Path) -> None:
    code = "import passkcore, passkcore.kernels; print(passkcore._core.__name__, passkcore.pass_at_k(4, [1], 1)[0])"
    assert _run(code, ROOT).split() == ["passkcore._core", "0.25"]
    assert _run(code, tmp_path).split() == ["passkcore._core", "0.25"]


def test_no_top_level_kernels_module(tmp_path: Path) -> None:
    # transformers probes for an unrelated package named `kernels`; we must never provide one.
    out = _run("import importlib.util; print(importlib.util.find_spec('kernels'))", tmp_path)
    assert out.strip() == "None"


def test_public_api_is_exported_and_typed() -> None:
    for name in passkcore.__all__:
        assert hasattr(passkcore, name), name
    pkg = Path(passkcore.__file__).parent
    assert (pkg / "py.typed").exists() and (pkg / "_core.pyi").exists()
