"""Pipeline stages over a run directory: verify resumes after a crash; estimate/coverage read runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import passkcore.verify as verify_pkg
from passkcore.cli import main
from passkcore.pipeline.commands import verify, write_counts
from passkcore.pipeline.store import SampleStore
from passkcore.problems import arithmetic
from tests.conftest import fake_run


def test_verify_resumes_after_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = fake_run(tmp_path, {"base": 1, "rl": 3})
    assert [p.id for p in store.problems()] == [p.id for p in arithmetic(2, seed=5)]
    real = verify_pkg.verify_rows
    calls = {"n": 0}

    def crash_after_first(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > 1:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(verify_pkg, "verify_rows", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        verify(tmp_path, batch=5)
    assert sum(len(store.verdict_keys(m)) for m in ("base", "rl")) == 5
    monkeypatch.setattr(verify_pkg, "verify_rows", real)
    verify(tmp_path, batch=5)
    assert store.verdict_keys("base") | store.verdict_keys("rl") and len(store.verdict_keys("rl")) == 8
    counts = {(r["model"], r["problem_id"]): (r["n"], r["c"]) for r in store.counts().to_pylist()}
    assert set(counts.values()) == {(4, 1), (4, 3)} and len(counts) == 4
    verify(tmp_path)  # nothing left: writes nothing twice
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
