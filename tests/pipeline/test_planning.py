"""Planning from key columns and integer codes: items name rows by position (a mask when they are not
a whole range), rows are read back from only the row groups that hold them, the key index is built
in place and answers per problem, and a plan of a finished run holds nothing."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benches.synthetic import make_run
from passkcore.pipeline.planning import (
    decode_mask,
    encode_mask,
    item_positions,
    key_index,
    missing_rows,
    read_rows,
    row_item,
    stored_indices,
)
from passkcore.pipeline.run import KeyIndex, shard_files
from passkcore.pipeline.stages import SampleStage, ScoreStage, VerifyStage
from passkcore.problems import arithmetic
from passkcore.sampling import SamplingConfig, iter_requests, plan_requests


@pytest.mark.parametrize("size", [1, 7, 8, 9, 255, 256, 1001])
def test_masks_round_trip_at_odd_sizes(size: int) -> None:
    rng = np.random.default_rng(size)
    mask = rng.random(size) < 0.5
    mask[0] = True
    assert encode_mask(np.ones(size, bool)) is None
    text = encode_mask(mask) if not mask.all() else None
    assert decode_mask(text, size).tolist() == mask.tolist()
    assert text is None or len(text) == 2 * ((size + 7) // 8)


def test_rows_are_read_by_position_from_their_row_groups_only(tmp_path: Path) -> None:
    store = make_run(tmp_path / "run", 3, 40, verdicts=False, shard_rows=120)
    path = shard_files(store.folder("samples", "m"))[0]
    table = pq.read_table(path)
    pq.write_table(table, path, row_group_size=16)  # 8 row groups (a test of reading; runs never rewrite)
    rows = np.array([17, 18, 20, 47, 95])
    item = row_item(store.root, "m", path, rows)
    assert (item["start"], item["stop"], item["rows"]) == (17, 96, 5) and item["mask"] is not None
    assert item_positions(item).tolist() == rows.tolist()
    got = read_rows(store.root, item, ["problem_id", "sample_index", "response"])
    assert got.column_names == ["problem_id", "sample_index", "response"]
    assert got.to_pylist() == table.take(pa.array(rows)).select(got.column_names).to_pylist()
    whole = row_item(store.root, "m", path, np.arange(16, 32))
    assert whole["mask"] is None and read_rows(store.root, whole, ["sample_index"]).num_rows == 16
    json.dumps(item)  # plain JSON: Ray workers get items as text
    with pytest.raises(ValueError, match="the shard holds 120"):
        read_rows(store.root, {**item, "start": 200, "stop": 201, "mask": None}, ["problem_id"])


def test_missing_rows_come_shard_by_shard_in_batches(tmp_path: Path) -> None:
    store = make_run(tmp_path / "run", 2, 10, verdicts=False, shard_rows=7, scores_except=5)  # 3 shards
    index = key_index(store, "scores", "smollm2-135m")
    groups = list(missing_rows(store, "m", [index], batch=3))
    assert [(p.name, rows.tolist()) for p, rows, _ in groups] == [("s000002.parquet", [1, 2, 3]),
                                                                   ("s000002.parquet", [4, 5])]
    assert all(not flags.any() for _, _, flags in groups)


def test_the_key_index_is_built_in_place_and_answers_per_problem(tmp_path: Path) -> None:
    store = make_run(tmp_path / "run", 3, 6, verdicts=False, shard_rows=4)
    again = pq.read_table(shard_files(store.folder("samples", "m"))[0])
    pq.write_table(again, store.folder("samples", "m") / "again.parquet")  # 4 keys stored twice
    index = key_index(store, "samples", "m")
    assert len(index) == 18 and index.sorted.dtype == np.int64 and np.all(np.diff(index.sorted) > 0)
    first = store.problems()[0].id
    assert stored_indices(index, first, 6).tolist() == list(range(6))
    assert stored_indices(index, first, 3).tolist() == [0, 1, 2]
    assert stored_indices(index, "no such problem", 6).size == 0
    index.add(index.codes(pa.table({"problem_id": [first], "sample_index": pa.array([9], pa.int32())})))
    assert index.recent and index.indices_of(first).tolist() == [0, 1, 2, 3, 4, 5, 9]


def test_sample_requests_are_planned_one_at_a_time() -> None:
    problems = arithmetic(3, seed=0)
    lazy = iter_requests(problems, 10, SamplingConfig(chunk=4), lambda pid: [0, 1])
    first = next(lazy)
    assert (first.problem.id, first.chunk_index, sorted(first.wanted)) == (problems[0].id, 0, [2, 3])
    assert [r.wanted for r in plan_requests(problems, 10, SamplingConfig(chunk=4), lambda pid: [0, 1])][0] == first.wanted


def test_a_plan_over_a_finished_run_keeps_nothing(tmp_path: Path) -> None:
    """Planning a complete run of 100,000 samples leaves nothing on the Python heap, and costs less
    than 32 bytes a stored key while it runs (Python and numpy allocations: the codes, 8 bytes a key,
    and one group of shards' codes being made)."""
    store = make_run(tmp_path / "run", 100, 1000, shard_rows=1000, scores_except=0)
    stages = [VerifyStage(str(store.root)), ScoreStage(str(store.root), "smollm2-135m"),
              SampleStage(str(store.root), "m", "synthetic", 1000, SamplingConfig(chunk=16))]
    for stage in stages:
        stage.plan()  # opens the store and the problems: not counted below
        tracemalloc.start()
        assert stage.plan() == []
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert current < 64 * 1024, (stage.name, current)
        assert peak < 32 * 100_000, (stage.name, peak)


def test_a_fresh_sample_plan_holds_no_key_lists(tmp_path: Path) -> None:
    store = make_run(tmp_path / "run", 4, 64, verdicts=False)
    stage = SampleStage(str(store.root), "m", "synthetic", 128, SamplingConfig(chunk=16), batch_requests=3)
    items = stage.plan()
    assert sum(i["rows"] for i in items) == 4 * 64 and len(items) == 6  # 16 chunks in items of 3
    assert all(r["wanted"] is None for i in items for r in i["requests"])
    assert {(r.problem.id, i) for item in items for r in stage.requests(item) for i in r.wanted} == {
        (p.id, i) for p in store.problems() for i in range(64, 128)}


def test_an_index_of_an_empty_folder_is_empty(tmp_path: Path) -> None:
    index = KeyIndex(tmp_path / "none", "verdicts").refresh()
    assert len(index) == 0 and index.indices_of("p").size == 0
