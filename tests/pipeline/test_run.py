"""The run layout: digest-named shards, column-pruned reads, the key index that spares writes from
re-reading the run, and counts as an Arrow group-by."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from benches.synthetic import make_run
from passkcore.pipeline import run as layout
from passkcore.pipeline.run import SAMPLE_SCHEMA, KeyIndex, read_shards, shard_files, shard_name
from passkcore.pipeline.store import SampleStore


def _row(pid: str, idx: int, model: str = "m") -> dict[str, Any]:
    return {"model": model, "problem_id": pid, "sample_index": idx, "seed": 7, "prompt_token_ids": [1, 2],
            "response_token_ids": [3, 4, 5], "response": f"r{idx}", "finish_reason": "stop"}


def test_shards_are_named_by_their_keys(tmp_path: Path) -> None:
    rows = [_row("a", 1), _row("a", 0)]
    for name in ("one", "two"):
        SampleStore.create(tmp_path / name, {"spec": "t"}).write_samples(rows)
    one, two = shard_files(tmp_path / "one" / "samples" / "m"), shard_files(tmp_path / "two" / "samples" / "m")
    assert [p.name for p in one] == [p.name for p in two] == [f"{shard_name('samples', 'm', [('a', 0), ('a', 1)])}.parquet"]
    with pytest.raises(ValueError, match="shard name"):
        layout.write_shard(pa.table({"x": [1]}), tmp_path, "../x")


def test_a_write_reads_only_key_columns_of_new_shards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SampleStore.create(tmp_path / "run", {"spec": "t"})
    other = SampleStore(tmp_path / "run")  # another process, as far as the store can tell
    reads: list[tuple[str, list[str]]] = []
    real = layout.read_key_columns

    def spy(file: Path, columns: Any) -> pa.Table:
        reads.append((Path(file).name, list(columns)))
        return real(file, columns)

    monkeypatch.setattr(layout, "read_key_columns", spy)
    for b in range(5):
        assert store.write_samples([_row("a", 2 * b), _row("a", 2 * b + 1)]) == 2
    assert reads == []  # its own shards are indexed as it writes them
    first = sorted(p.name for p in shard_files(store.folder("samples", "m")))
    assert other.write_samples([_row("a", 3), _row("b", 0)]) == 1  # sees the other's 5 shards, keys only
    assert sorted(reads) == [(name, ["problem_id", "sample_index"]) for name in first]
    assert store.write_samples([_row("b", 0), _row("b", 1), _row("b", 1)]) == 1  # one new shard to read
    assert len(reads) == 6 and reads[-1][1] == ["problem_id", "sample_index"] and reads[-1][0] not in first
    assert store.sample_keys("m") == {("a", i) for i in range(10)} | {("b", 0), ("b", 1)}


def test_key_index_finds_old_and_recent_keys(tmp_path: Path) -> None:
    index = KeyIndex(tmp_path, "samples")
    table = pa.table({"problem_id": ["p", "q", "p"], "sample_index": pa.array([0, 5, 2**31 - 1], pa.int32())})
    codes = index.codes(table)
    index.add(codes[:2])
    assert index.contains(codes).tolist() == [True, True, False]
    many = pa.table({"problem_id": ["r"] * 5000, "sample_index": pa.array(np.arange(5000), pa.int32())})
    index.add(index.codes(many))  # folded into the sorted array
    assert not index.recent and len(index) == 5002 and index.contains(codes).tolist() == [True, True, False]
    with pytest.raises(ValueError, match="sample_index must be in"):
        index.codes(pa.table({"problem_id": ["p"], "sample_index": pa.array([-1], pa.int32())}))


def test_reads_take_only_the_columns_asked_for(tmp_path: Path) -> None:
    store = make_run(tmp_path / "run", 3, 4, shard_rows=5, scores_except=2)
    keys = store.read("samples", "m", ["problem_id", "sample_index"])
    assert keys.column_names == ["problem_id", "sample_index"] and keys.num_rows == 12
    assert read_shards([], SAMPLE_SCHEMA, ["problem_id", "__filename"]).column_names == ["problem_id", "__filename"]
    counts = store.counts().to_pylist()
    assert [(c["n"], c["c"]) for c in counts] == [(4, 2)] * 3  # indices 0 and 3 of 4 are correct
    assert store.scores(columns=["status"]).num_rows == 10


def test_counts_need_every_sample_verified(tmp_path: Path) -> None:
    store = make_run(tmp_path / "run", 2, 3, verdicts=False)
    with pytest.raises(ValueError, match="6 of 6 samples are not verified yet"):
        store.counts()
    with pytest.raises(ValueError, match="no samples stored"):
        SampleStore.create(tmp_path / "empty", {"spec": "t"}).counts()
