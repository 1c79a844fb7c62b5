"""The Parquet sample store: atomic shards, idempotent keys, verdict join, counts, schema versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from passkcore.pipeline.run import SAMPLE_SCHEMA, is_run_dir
from passkcore.pipeline.store import SampleStore
from passkcore.verify.verdict import VERDICT_COLUMNS


def _row(pid: str, idx: int, model: str = "m") -> dict[str, Any]:
    return {"model": model, "problem_id": pid, "sample_index": idx, "seed": 7, "prompt_token_ids": [1, 2],
            "response_token_ids": [3, 4, 5], "response": f"r{idx}", "finish_reason": "stop",
            "cumulative_logprob": -1.5}


def _verdict(pid: str, idx: int, ok: bool, model: str = "m") -> dict[str, Any]:
    return {"model": model, "problem_id": pid, "sample_index": idx, "correct": ok, "extracted_answer": "1",
            "verifier": "t", "reason": "passed" if ok else "wrong_answer"}


def test_write_is_idempotent_and_counts_group(tmp_path: Path) -> None:
    store = SampleStore.create(tmp_path / "run", {"spec": "t"})
    assert is_run_dir(tmp_path / "run")
    assert store.write_samples([_row("a", 0), _row("a", 1), _row("b", 0)]) == 3
    assert store.write_samples([_row("a", 1), _row("b", 0), _row("b", 1), _row("b", 1)]) == 1
    assert store.sample_keys("m") == {("a", 0), ("a", 1), ("b", 0), ("b", 1)}
    with pytest.raises(ValueError, match="4 of 4 samples are not verified"):
        store.counts()
    store.write_verdicts([_verdict("a", 0, True), _verdict("a", 1, False), _verdict("b", 0, False)])
    with pytest.raises(ValueError, match="1 of 4 samples are not verified"):
        store.counts()
    store.write_verdicts([_verdict("b", 1, False), _verdict("b", 1, True)])
    counts = store.counts().to_pylist()
    assert counts == [{"problem_id": "a", "model": "m", "n": 2, "c": 1}, {"problem_id": "b", "model": "m", "n": 2, "c": 0}]
    table = store.samples()
    assert table.column_names == SAMPLE_SCHEMA.names + [c for c in VERDICT_COLUMNS if c not in SAMPLE_SCHEMA.names]
    assert table.column("response_token_ids").to_pylist()[0] == [3, 4, 5]
    assert table.column("reason").to_pylist() == ["passed", "wrong_answer", "wrong_answer", "wrong_answer"]


def test_temporary_shards_are_ignored(tmp_path: Path) -> None:
    store = SampleStore.create(tmp_path, {"spec": "t"})
    store.write_samples([_row("a", 0)])
    # A writer killed mid-shard leaves only a dot-prefixed temporary file.
    folder = tmp_path / "samples" / "m"
    pq.write_table(pa.Table.from_pylist([_row("a", 1)], schema=SAMPLE_SCHEMA), folder / ".x.parquet.tmp")
    (folder / ".half.parquet.tmp").write_bytes(b"PAR1 broken")
    assert store.sample_keys("m") == {("a", 0)}


def test_schema_version_mismatch_is_an_error(tmp_path: Path) -> None:
    store = SampleStore.create(tmp_path, {"spec": "t"})
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["schema_version"] = 99
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"schema version 99; this passkcore reads versions \(1, 2\)"):
        SampleStore(tmp_path)
    del store
    other = tmp_path / "other"
    SampleStore.create(other, {"spec": "t"})
    bad = SAMPLE_SCHEMA.with_metadata({b"passkcore.schema_version": b"0"})
    (other / "samples" / "m").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([_row("a", 0)], schema=bad), other / "samples" / "m" / "x.parquet")
    with pytest.raises(ValueError, match="store schema version 0"):
        SampleStore(other).samples()


def test_run_guards(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a passkcore run"):
        SampleStore(tmp_path)
    store = SampleStore.create(tmp_path, {"spec": "a"})
    with pytest.raises(ValueError, match="already holds a run over other problems"):
        SampleStore.create(tmp_path, {"spec": "b"})
    store.register_model("base", {"temperature": 1.0, "n": 4})
    store.register_model("base", {"temperature": 1.0, "n": 4})
    with pytest.raises(ValueError, match="temperature differ"):
        store.register_model("base", {"temperature": 0.3, "n": 4})
    with pytest.raises(ValueError, match="model label"):
        store.write_samples([_row("a", 0, model="../evil")])


def test_version_1_verdict_shards_still_read(tmp_path: Path) -> None:
    store = SampleStore.create(tmp_path / "run", {"spec": "t"})
    store.write_samples([_row("a", 0)])
    old = pa.table({"model": ["m"], "problem_id": ["a"], "sample_index": pa.array([0], pa.int32()),
                    "correct": [True], "extracted_answer": ["1"], "verifier": ["v"], "reason": ["passed"]})
    old = old.replace_schema_metadata({b"passkcore.schema_version": b"1"})
    (tmp_path / "run" / "verdicts" / "m").mkdir(parents=True)
    pq.write_table(old, tmp_path / "run" / "verdicts" / "m" / "old.parquet")
    row = store.samples().to_pylist()[0]
    assert row["correct"] is True and row["tests_passed"] is None and row["answer_key"] is None
    assert store.counts().to_pylist() == [{"problem_id": "a", "model": "m", "n": 1, "c": 1}]
