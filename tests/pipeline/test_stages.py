"""Stages: plans from keys (sampling asks only for the missing chunks), options passed through to the verifier, an item that raises stores
nothing, and SIGKILL of verify and score at a point, then a rerun: every key exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import passkcore.verify as verify_pkg
from benches.synthetic import make_run
from passkcore.pipeline.commands import execute
from passkcore.pipeline.run import shard_files
from passkcore.pipeline.stages import SampleStage, ScoreStage, VerifyStage
from passkcore.pipeline.store import SampleStore
from passkcore.sampling import SamplingConfig
from passkcore.verify.verdict import Verdict
from tests.conftest import tiny_llama

ROOT = Path(__file__).resolve().parents[2]


def _keys_once(folder: Path, with_model: bool = False) -> list[tuple[Any, ...]]:
    """Every key stored in a folder's shards, asserting none is there twice."""
    keys: list[tuple[Any, ...]] = []
    for path in shard_files(folder):
        t = pq.read_table(path, columns=["model", "problem_id", "sample_index"])
        cols = [t.column(c).to_pylist() for c in (["model"] if with_model else []) + ["problem_id", "sample_index"]]
        keys.extend(zip(*cols))
    assert len(keys) == len(set(keys))
    return keys


def test_verify_passes_options_and_stores_nothing_for_an_item_that_raises(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    store = make_run(tmp_path / "run", 2, 3, shard_rows=2, verdicts=False)
    seen: list[dict[str, Any]] = []

    def fake(rows: Any, problems: Any, **options: Any) -> list[Verdict]:
        seen.append(options)
        if len(seen) == 2:
            raise RuntimeError("sandbox unavailable")
        return [Verdict(True, "passed") for _ in rows]

    monkeypatch.setattr(verify_pkg, "verify_rows", fake)
    stage = VerifyStage(str(store.root), {"timeout_s": 3.0, "math_extract": "boxed"}, workers=1, batch=2)
    items = stage.plan()
    assert [i["rows"] for i in items] == [2, 2, 2]
    with pytest.raises(RuntimeError, match="sandbox unavailable"):
        execute(stage, None)
    assert seen[0] == {"workers": 1, "timeout_s": 3.0, "math_extract": "boxed"}
    assert len(shard_files(store.folder("verdicts", "m"))) == 1  # the failed item wrote nothing
    stats = execute(VerifyStage(str(store.root), workers=1, batch=2), None)
    assert (stats.items, stats.rows) == (2, 4)
    assert len(_keys_once(store.folder("verdicts", "m"))) == 6 and store.counts().num_rows == 2


_SLOW_VERIFY = """
import sys, time
import passkcore.verify as v
from passkcore.pipeline.commands import execute
from passkcore.pipeline.stages import VerifyStage
real = v.verify_rows
def slow(rows, problems, **options):
    time.sleep(0.3)
    return real(rows, problems, **options)
v.verify_rows = slow
execute(VerifyStage(sys.argv[1], workers=1, batch=3), None)
"""


def _kill_when(proc: subprocess.Popen[bytes], folder: Path, shards: int, limit_s: float) -> int:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and proc.poll() is None:
        if len(shard_files(folder)) >= shards:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the stage ended before it could be killed"
    reached = len(shard_files(folder)) >= shards
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert reached, f"no {shards} shard(s) within {limit_s:g} s (a loaded machine?): nothing to kill mid-stage"
    return len(shard_files(folder))


@pytest.mark.slow
def test_verify_killed_mid_stage_reruns_to_every_key_once(tmp_path: Path) -> None:
    store = make_run(tmp_path / "run", 4, 6, shard_rows=6, verdicts=False)
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_VERIFY, str(store.root)], cwd=ROOT,
                            start_new_session=True, stderr=subprocess.DEVNULL)
    folder = store.folder("verdicts", "m")
    done = _kill_when(proc, folder, 2, 120)
    assert 2 <= done < 8
    stats = execute(VerifyStage(str(store.root), workers=1, batch=3), None)
    assert stats.items == 8 - done
    assert len(_keys_once(folder)) == 24 and sum(r["n"] for r in SampleStore(store.root).counts().to_pylist()) == 24


# The child kills itself with SIGKILL at its fourth shard write (an item writes one shard per
# temperature): one item stored, one half-stored, the rest never started. Deterministic, whatever the
# machine's load. The torch backend: the pipeline is under test here, not the numba head (no JIT).
_KILLED_SCORE = """
import os, signal, sys
import passkcore.pipeline.stages as stages
import passkcore.pipeline.store as store  # the one shard writer's file step
from passkcore.pipeline.commands import execute
real, calls = store.write_shard, []
def dying(table, folder, name):
    calls.append(name)
    if len(calls) == 4:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(table, folder, name)
store.write_shard = dying
execute(stages.ScoreStage(sys.argv[1], scorer=sys.argv[2], temperatures=(1.0, 0.5), backend="torch", batch=4), None)
"""


@pytest.mark.slow
def test_score_killed_mid_stage_reruns_to_every_key_once(tmp_path: Path) -> None:
    store = make_run(tmp_path / "run", 6, 4, tokens=24, shard_rows=4)  # 6 items of 4 rows
    tiny = str(tiny_llama(tmp_path / "tiny"))
    proc = subprocess.run([sys.executable, "-c", _KILLED_SCORE, str(store.root), tiny], cwd=ROOT,
                          capture_output=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    stage = ScoreStage(str(store.root), scorer=tiny, backend="torch", temperatures=(1.0, 0.5), batch=4)
    # Killed as its second item wrote its first temperature's shard: 2 + 1 shards stored.
    assert sum(len(shard_files(store.folder("scores", label))) for label in stage.labels) == 3
    left = stage.plan()
    assert len(left) == 5 and all(i["rows"] == 4 for i in left)
    stats = execute(stage, None)
    assert stats.rows == 20
    for label in stage.labels:
        assert len(_keys_once(store.folder("scores", label), with_model=True)) == 24
    assert ScoreStage(str(store.root), scorer=tiny, backend="torch", temperatures=(1.0, 0.5), batch=4).plan() == []


def test_sample_plan_asks_only_for_missing_indices(tmp_path: Path) -> None:
    store = make_run(tmp_path / "run", 3, 6, verdicts=False, shard_rows=5)  # 3 problems x indices 0-5
    ids = [p.id for p in store.problems()]
    assert SampleStage(str(store.root), "m", "synthetic", 6, SamplingConfig(chunk=4)).plan() == []  # complete
    items = SampleStage(str(store.root), "m", "synthetic", 8, SamplingConfig(chunk=4), batch_requests=2).plan()
    requests = [r for item in items for r in item["requests"]]
    assert requests == [{"problem_id": pid, "chunk_index": 1, "size": 4, "wanted": [6, 7]} for pid in ids]
    assert [len(item["requests"]) for item in items] == [2, 1]
    assert [item["rows"] for item in items] == [4, 2]
    assert SampleStage(str(store.root), "m", "synthetic", 4, SamplingConfig(chunk=4)).plan() == []  # 4, 5 past n
    # Shards of 5 rows: the second held p0's index 5 and p1's 0-3. Without it, only those are asked for.
    (store.folder("samples", "m") / "s000001.parquet").unlink()
    items = SampleStage(str(store.root), "m", "synthetic", 6, SamplingConfig(chunk=4), batch_requests=8).plan()
    assert [item["requests"] for item in items] == [[
        {"problem_id": ids[0], "chunk_index": 1, "size": 2, "wanted": [5]},
        {"problem_id": ids[1], "chunk_index": 0, "size": 4, "wanted": None}]]  # None: the whole chunk
    stage = SampleStage(str(store.root), "m", "synthetic", 6, SamplingConfig(chunk=4))
    assert [(r.problem.id, r.chunk_index, sorted(r.wanted)) for r in stage.requests(items[0])] == [
        (ids[0], 1, [5]), (ids[1], 0, [0, 1, 2, 3])]
    # A key stored twice (two samplers with other item sizes) does not stand in for a missing one.
    twice = pq.read_table(store.folder("samples", "m") / "s000000.parquet")  # p0's indices 0-4
    pq.write_table(twice, store.folder("samples", "m") / "again.parquet")
    (store.folder("samples", "m") / "s000002.parquet").unlink()  # p1's 4-5 and p2's 0-2
    items = SampleStage(str(store.root), "m", "synthetic", 6, SamplingConfig(chunk=4), batch_requests=8).plan()
    assert [(r["problem_id"], r["wanted"]) for r in items[0]["requests"]] == [
        (ids[0], [5]), (ids[1], None), (ids[1], None), (ids[2], [0, 1, 2])]


def test_score_dtype_is_kept_per_scorer_label(tmp_path: Path) -> None:
    """`passk score --dtype bfloat16` scores under its own label (.bf16), recorded in the manifest; a
    label keeps its dtype (fp32 and bf16 scores never mix under one label)."""
    from passkcore.pipeline import commands

    store = make_run(tmp_path / "run", 2, 3, tokens=12)
    tiny = str(tiny_llama(tmp_path / "tiny"))
    _, bf16_labels, _ = commands.score(store.root, scorer=tiny, dtype="bfloat16")
    _, fp32_labels, _ = commands.score(store.root, scorer=tiny)
    assert bf16_labels == ["tiny.bf16"] and fp32_labels == ["tiny"]
    assert SampleStore(store.root).manifest["scorers"] == {"tiny.bf16": {"dtype": "bfloat16"},
                                                          "tiny": {"dtype": "float32"}}
    scores = SampleStore(store.root).scores(columns=["scorer", "status", "ppl"]).to_pylist()
    assert sorted(r["scorer"] for r in scores) == ["tiny"] * 6 + ["tiny.bf16"] * 6
    assert all(r["status"] == "ok" and r["ppl"] > 1 for r in scores)
    with pytest.raises(ValueError, match="scorer 'tiny.bf16' was scored with other settings"):
        commands.score(store.root, scorer=tiny, label="tiny.bf16")
    with pytest.raises(ValueError, match="dtype must be one of float32, bfloat16"):
        commands.score(store.root, scorer=tiny, dtype="float16")
