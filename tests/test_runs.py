"""Pipeline stages over a run directory: verify resumes after a crash; estimate/coverage read runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import passkcore.verify as verify_pkg
from passkcore.cli import main
from passkcore.problems import arithmetic
from passkcore.runs import open_run, run_problems, verify_run, write_counts
from passkcore.store import SampleStore


def fake_run(root: Path, models: dict[str, int]) -> SampleStore:
    """Two arithmetic problems, 4 samples each; model m answers correctly in its first models[m]."""
    problems = arithmetic(2, seed=5)
    store = open_run(root, problems, {"spec": "arith", "limit": 2, "seed": 5})
    rows = []
    for model, right in models.items():
        for p in problems:
            for i in range(4):
                answer = p.answer if i < right else "-1"
                rows.append({"model": model, "problem_id": p.id, "sample_index": i, "seed": 1,
                             "prompt_token_ids": [1], "response_token_ids": [2], "response": f"\\boxed{{{answer}}}",
                             "finish_reason": "stop", "cumulative_logprob": -1.0})
    store.write_samples(rows)
    return store


def test_verify_resumes_after_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = fake_run(tmp_path, {"base": 1, "rl": 3})
    assert [p.id for p in run_problems(store)] == [p.id for p in arithmetic(2, seed=5)]
    real = verify_pkg.verify_rows
    calls = {"n": 0}

    def crash_after_first(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > 1:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(verify_pkg, "verify_rows", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        verify_run(tmp_path, batch=5)
    assert sum(len(store.verdict_keys(m)) for m in ("base", "rl")) == 5
    monkeypatch.setattr(verify_pkg, "verify_rows", real)
    verify_run(tmp_path, batch=5)
    assert store.verdict_keys("base") | store.verdict_keys("rl") and len(store.verdict_keys("rl")) == 8
    counts = {(r["model"], r["problem_id"]): (r["n"], r["c"]) for r in store.counts().to_pylist()}
    assert set(counts.values()) == {(4, 1), (4, 3)} and len(counts) == 4
    verify_run(tmp_path)  # nothing left: writes nothing twice
    assert len(SampleStore(tmp_path).samples().column("reason")) == 16


def test_cli_reads_run_directories(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake_run(tmp_path, {"base": 1, "rl": 3})
    assert main(["estimate", str(tmp_path), "--json"]) == 2
    assert "not verified yet" in capsys.readouterr().err
    assert main(["verify", str(tmp_path)]) == 0
    assert "passed 8" in capsys.readouterr().out
    assert main(["counts", str(tmp_path), "--out", str(tmp_path / "counts.csv")]) == 0
    assert (tmp_path / "counts.csv").read_text().count("\n") == 5
    write_counts(tmp_path, tmp_path / "c.parquet")
    capsys.readouterr()
    assert main(["estimate", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["k"] == [1, 2, 4] and doc["models"]["base"]["pass_at_k"][0] == 0.25
    assert main(["coverage", str(tmp_path / "c.parquet"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pairs"][0]["both"] == 2
