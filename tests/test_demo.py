"""The whole study end to end on the embedded model, at toy size: its resumption, and the same demo on
a local Ray cluster giving the same store and the same report."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from passkcore.pipeline import commands
from passkcore.pipeline.store import SampleStore
from passkcore.sampling import SamplingConfig
from tests.conftest import ENGINE_LINE

# One OpenMP thread in both runs, as Ray gives an actor with num_cpus=1: with 2 threads, bf16 sums
# in another order flip near-ties (3 of 256 longer samples diverged after token 49, measured here).
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind"}
TINY = ["--arith", "3", "--code", "1", "--n", "2", "--max-tokens", "24",
        "--score-backend", "fused", "--dtype", "float32"]  # fp32: bf16 on Ray is tests/pipeline/test_ray.py's


def _demo(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "passkcore.cli", "demo", "--out", str(out), *TINY, *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("single") / "demo"
    return out, _demo(out)


@pytest.mark.slow
def test_tiny_demo_runs_and_resumes_to_the_same_report(tiny_demo: tuple[Path, Any]) -> None:
    out, first = tiny_demo
    html_path, json_path = out / "report" / "report.html", out / "report" / "report.json"
    assert f"report: {html_path}" in first.stdout and f"numbers: {json_path}" in first.stdout
    # Progress bars and the report paths; no engine log lines, on either stream.
    assert not ENGINE_LINE.search(first.stdout + first.stderr), ENGINE_LINE.search(first.stdout + first.stderr)
    assert "verifying" in first.stdout and "Loading safetensors" not in first.stderr
    data = json.loads(json_path.read_text())
    assert data["models"] == ["base", "sharpened"] and data["problems"] == {"base": 4, "sharpened": 4}
    assert data["k"] == [1, 2] and len(data["crossings"]) == 1 and data["coverage"]["k"] == 2
    scorers = {(s["model"], s["scorer"]) for s in data["ppl"]["summary"]}
    assert {("base", "smollm2-135m"), ("sharpened", "smollm2-135m"), ("sharpened", "smollm2-135m.T0.3")} <= scorers
    assert all(s["scored"] == 8 for s in data["ppl"]["summary"])
    # PPL as the study uses it (by verdict, PPL_base(R_correct) first) and the case studies behind the numbers.
    ppl = data["benchmarks"][0]["ppl"]
    assert ppl["headline"]["scorer"] == "smollm2-135m" and len(ppl["by_verdict"]) == 3 * len(ppl["summary"])
    solved = SampleStore(out).counts().to_pylist()
    assert bool(data["case_studies"]) == any(r["c"] > 0 for r in solved)
    assert all(s["response"] is not None and s["num_tokens"] for c in data["case_studies"] for s in c["samples"])
    assert 'id="case-studies"' in html_path.read_text() and 'id="ppl-correct"' in html_path.read_text()
    json_path.unlink()
    _demo(out)
    assert json.loads(json_path.read_text()) == data  # every step skipped what was stored: same numbers
    # The engine's dtype is kept per label and shown by the report.
    store = SampleStore(out)
    assert [store.manifest["models"][m]["dtype"] for m in ("base", "sharpened")] == ["float32", "float32"]
    assert [row["dtype"] for row in data["benchmarks"][0]["sampling"]] == ["float32", "float32"]
    assert 'id="sampling"' in html_path.read_text()
    # Resuming a label in another dtype would mix arithmetic in one label: refused before any engine starts;
    # auto resumes in the recorded dtype.
    config = SamplingConfig(temperature=1.0, top_p=1.0, max_tokens=24, seed=0, chunk=2)
    with pytest.raises(ValueError, match=r"model 'base' was sampled with other settings \(dtype differ\)"):
        commands.sample(store, model="smollm2-135m", problems=str(out / "demo-problems.jsonl"), n=2, label="base",
                        sampling=config, dtype="bfloat16")
    assert commands.sample_dtype(store, "base", "auto") == "float32"
    assert commands.sample_dtype(store, "new-label", "bfloat16") == "bfloat16"


def _rows(store: SampleStore, kind: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Every stored row of one kind, keyed; asserting no key is stored twice."""
    if kind == "samples":
        rows = store.samples(columns=["model", "problem_id", "sample_index", "seed", "prompt_token_ids",
                                      "response_token_ids", "response", "correct", "extracted_answer", "reason"])
        keyed = {(r["model"], r["problem_id"], r["sample_index"]): r for r in rows.to_pylist()}
    else:
        rows = store.scores()
        keyed = {(r["scorer"], r["model"], r["problem_id"], r["sample_index"]): r for r in rows.to_pylist()}
    assert len(keyed) == rows.num_rows
    return keyed


def _same(ours: Any, theirs: Any, where: str = "") -> list[str]:
    """Where two JSON values differ: floats to 1e-5 relative (scores: batch-invariant heads on another
    process's arithmetic), everything else exactly."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        if ours.keys() != theirs.keys():
            return [f"{where}: keys {sorted(ours.keys() ^ theirs.keys())}"]
        return [d for k in ours for d in _same(ours[k], theirs[k], f"{where}.{k}")]
    if isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            return [f"{where}: {len(ours)} != {len(theirs)} items"]
        return [d for i, (a, b) in enumerate(zip(ours, theirs)) for d in _same(a, b, f"{where}[{i}]")]
    if isinstance(ours, float) and isinstance(theirs, float):
        return [] if math.isclose(ours, theirs, rel_tol=1e-5, abs_tol=1e-9) else [f"{where}: {ours} != {theirs}"]
    return [] if ours == theirs else [f"{where}: {ours!r} != {theirs!r}"]


@pytest.mark.slow
def test_the_demo_on_ray_gives_the_same_store_and_report(tiny_demo: tuple[Path, Any], tmp_path: Path) -> None:
    single_root, _ = tiny_demo
    out = tmp_path / "demo"
    done = _demo(out, "--ray", "--replicas", "2")
    assert "on Ray" in done.stdout and f"numbers: {out / 'report' / 'report.json'}" in done.stdout
    ray, single = SampleStore(out), SampleStore(single_root)
    # The same manifest but for the run's own path (the demo's problem file lies in its run directory).
    assert json.dumps(ray.manifest).replace(str(out), "RUN") == json.dumps(single.manifest).replace(str(single_root),
                                                                                                     "RUN")
    for kind in ("samples", "scores"):  # samples with their verdicts; every scorer's scores
        ours, theirs = _rows(ray, kind), _rows(single, kind)
        assert ours.keys() == theirs.keys() and len(ours) == (16 if kind == "samples" else 32)
        assert [k for k in ours if _same(ours[k], theirs[k])] == []  # same seeds: same samples, verdicts, scores
    assert ray.counts().equals(single.counts())
    report = json.loads((out / "report" / "report.json").read_text().replace(str(out), "RUN"))
    reference = json.loads((single_root / "report" / "report.json").read_text().replace(str(single_root), "RUN"))
    assert _same(report, reference) == []
