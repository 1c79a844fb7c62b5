"""The Ray pipelines on a local cluster of 2 CPU workers: retries, exactly-once items, a vLLM replica
killed mid-run, joining a cluster from the CLI. (The Ray demo against the single-process demo, store
and report: tests/test_demo.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from passkcore.pipeline import commands, executors
from passkcore.pipeline.executors import Cluster
from passkcore.pipeline.planning import read_rows
from passkcore.pipeline.run import shard_files, shard_name
from passkcore.pipeline.stages import VerifyStage
from passkcore.pipeline.store import SampleStore
from passkcore.sampling import SamplingConfig
from tests.conftest import tiny_llama

PASSK = [sys.executable, "-m", "passkcore.cli"]
SAMPLING = SamplingConfig(temperature=1.0, max_tokens=32, chunk=4)


# -- without Ray --------------------------------------------------------------------------------------
def test_shard_names_depend_on_the_keys_only() -> None:
    a = shard_name("samples", "base", [("p1", 3), ("p0", 1)])
    assert a == shard_name("samples", "base", [("p0", 1), ("p1", 3)])
    assert a != shard_name("samples", "base", [("p0", 1)])
    assert a != shard_name("verdicts", "base", [("p0", 1), ("p1", 3)])
    assert a != shard_name("samples", "rl", [("p0", 1), ("p1", 3)])


@pytest.mark.parametrize("field,value", [("replicas", 0), ("num_cpus", -1), ("verify_workers", 1.5),
                                         ("tensor_parallel_size", 0), ("retries", -1), ("replicas", True),
                                         ("cpus_per_replica", 0)])
def test_cluster_rejects_bad_sizes(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        Cluster(**{field: value})


def test_without_ray_flag_nothing_imports_ray(tmp_path: Path) -> None:
    """The single-process stages, run through the CLI, never import Ray."""
    root = _verified_store(tmp_path / "run").root
    code = ("import sys\n"
            "from passkcore.cli import main\n"
            "import passkcore.pipeline.executors\n"
            "assert main(['verify', sys.argv[1], '--workers', '1']) == 0\n"
            "assert main(['counts', sys.argv[1], '--out', sys.argv[2]]) == 0\n"
            "print('ray' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code, str(root), str(tmp_path / "counts.csv")], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"
    assert (tmp_path / "counts.csv").read_text().count(",3,2") == 2


def test_cli_takes_ray_with_or_without_an_address() -> None:
    from passkcore.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["verify", "run"]).ray is None
    assert parser.parse_args(["verify", "run", "--ray"]).ray == "local"
    assert parser.parse_args(["score", "run", "--ray", "ray://head:10001", "--replicas", "4"]).ray == "ray://head:10001"
    args = parser.parse_args(["sample", "--problems", "arith", "--n", "4", "--out", "r", "--ray", "auto",
                              "--tensor-parallel-size", "2"])
    assert (args.ray, args.tensor_parallel_size) == ("auto", 2)


def _verified_store(root: Path) -> SampleStore:
    """A hand-made run: 2 math problems x 3 samples in two shards, no verdicts yet."""
    from passkcore.problems import arithmetic

    problems = arithmetic(2, seed=0)
    store = SampleStore.open_run(root, problems, {"spec": "arith", "limit": 2, "seed": 0})
    store.register_model("base", {"model": "none", "n": 3})
    answers = [f"\\boxed{{{p.answer}}}" for p in problems]
    for part in ([0, 1], [2]):
        store.write_samples([{"model": "base", "problem_id": p.id, "sample_index": i, "seed": 0,
                              "prompt_token_ids": [1], "response_token_ids": [2],
                              "response": answers[j] if i != 2 else "no idea"}
                             for j, p in enumerate(problems) for i in part])
    return store


def test_a_retried_item_adds_nothing(tmp_path: Path) -> None:
    """The worker's own step, run twice as Ray would on a retry: the second finds its shard and stops."""
    store = _verified_store(tmp_path / "run")
    stage = VerifyStage(str(store.root), {"timeout_s": 10.0, "memory_mb": 512}, workers=1)
    items = stage.plan()
    assert len(items) == 2 == len(shard_files(store.root / "samples" / "base"))  # one item per sample shard
    item = items[0]
    first, second = stage.run(item), stage.run(item)
    assert first["rows"] == item["rows"] and not first.get("resumed")
    assert second == {"rows": item["rows"], "resumed": True}
    assert len(shard_files(store.root / "verdicts" / "base")) == 1
    table = read_rows(store.root, item, ["problem_id", "sample_index"])
    assert store.verdict_keys("base") == set(zip(table.column("problem_id").to_pylist(),
                                                 table.column("sample_index").to_pylist()))
    assert VerifyStage(str(store.root)).plan() == [items[1]]  # plans what is missing


# -- on a local Ray cluster -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Cluster]:
    cluster = Cluster(num_cpus=2, replicas=2, verify_workers=2)
    ray = executors.connect(cluster)
    yield cluster
    ray.shutdown()


def _replica_pids() -> list[int]:
    """This process's vLLM replicas: Ray's workers are descendants of the driver that started Ray, so a
    test running beside this one (another pytest worker, another Ray) keeps its replicas."""
    import psutil

    pids = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if "StageActor" in " ".join(proc.cmdline()):
                pids.append(proc.pid)
        except psutil.Error:
            pass
    return pids


@pytest.mark.slow
def test_sampling_killed_then_rerun_with_a_replica_killed_stores_every_key_once(ray_cluster: Cluster,
                                                                                tmp_path: Path) -> None:
    """Two kills in one run: the driver of a Ray sampling stage is SIGKILLed as its second shard is
    written; the rerun on Ray plans only the missing items, and its vLLM replica is SIGKILLed after
    the rerun's first shard (Ray restarts it and reruns its item). In bf16, named by the driver: the
    replicas sample in it whatever their CPU (vLLM emulates it where the CPU has no bf16), and the
    rerun resumes the label in the dtype it was started in."""
    out = tmp_path / "run"
    shards = out / "samples" / "base"
    _kill_driver_on_ray(out, "sample", at=2, timeout_s=1200)  # Ray and a vLLM replica start in it
    assert len(shard_files(shards)) == 2  # 2 of 12 items stored when the driver died
    killed: list[int] = []

    def kill_one_after_a_new_shard() -> None:
        deadline = time.monotonic() + 900  # replicas start slowly on a loaded machine (300 s ran out here once)
        while time.monotonic() < deadline:
            pids = _replica_pids()
            if len(shard_files(shards)) > 2 and pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
                return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_one_after_a_new_shard, daemon=True)
    killer.start()
    # One replica (on the fixture's Ray instance): the one killed; the pool restarts it. Two replicas
    # starting beside each other on 2 cores took 388 s of this test under a parallel suite.
    one = Cluster(num_cpus=2, replicas=1, verify_workers=2)
    store, stats = commands.sample(out, model="smollm2-135m", problems="arith", limit=6, n=4, label="base",
                                   sampling=SamplingConfig(temperature=1.0, max_tokens=24, chunk=2),
                                   batch_requests=1, cluster=one, dtype="bfloat16")
    killer.join(timeout=5)
    assert killed, "no replica was running to kill"
    assert killed[0] not in _replica_pids()
    assert stats.items == 10 and stats.rows == 20  # the rerun asked only for what was missing
    table = store.samples(columns=["problem_id", "sample_index", "response_token_ids"])
    keys = list(zip(table.column("problem_id").to_pylist(), table.column("sample_index").to_pylist()))
    assert len(keys) == len(set(keys)) == 24  # nothing lost, nothing duplicated
    on_disk = sum(pq.read_metadata(p).num_rows for p in shard_files(shards))
    assert on_disk == 24 and len(shard_files(shards)) == 12  # one shard per item, none written twice
    assert store.manifest["models"]["base"]["dtype"] == "bfloat16"


@pytest.mark.slow
def test_cli_joins_a_running_cluster_or_starts_its_own(ray_cluster: Cluster, tmp_path: Path) -> None:
    import ray

    store = _verified_store(tmp_path / "run")
    address = ray.get_runtime_context().gcs_address  # the fixture's cluster, joined by address
    done = subprocess.run([*PASSK, "verify", str(store.root), "--ray", address, "--workers", "2"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "verify on Ray: 2 workers" in done.stdout and "verdicts:" in done.stdout
    counts = tmp_path / "counts.csv"
    done = subprocess.run([*PASSK, "counts", str(store.root), "--out", str(counts), "--ray"],  # a local instance
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = counts.read_text().splitlines()
    assert lines[0] == '"problem_id","model","n","c"' and len(lines) == 3
    assert all(line.endswith(",3,2") for line in lines[1:])  # 2 boxed answers right, "no idea" wrong


def test_cli_names_an_unreachable_cluster(tmp_path: Path) -> None:
    store = _verified_store(tmp_path / "run")
    done = subprocess.run([*PASSK, "verify", str(store.root), "--ray", "127.0.0.1:1"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2
    assert "passk verify: error: could not join the Ray cluster at '127.0.0.1:1'" in done.stderr


def _flaky(batch: dict[str, Any], marks: str) -> dict[str, Any]:
    """Fails the first attempt at item 0, and every attempt at item 2 when there is one."""

    def run(item: dict[str, Any]) -> dict[str, Any]:
        mark = Path(marks) / f"{item['i']}.{time.monotonic_ns()}"
        mark.touch()
        if item["i"] == 2 or (item["i"] == 0 and len(list(Path(marks).glob("0.*"))) == 1):
            raise RuntimeError(f"item {item['i']} failed")
        return {"rows": 1}

    return executors.each_item(batch, run)


@pytest.mark.slow
def test_an_item_that_raises_is_retried_then_fails_the_stage(ray_cluster: Cluster, tmp_path: Path) -> None:
    ok = executors.item_dataset([{"i": 0}, {"i": 1}]).map_batches(_flaky, batch_size=1,
                                                                fn_kwargs={"marks": str(tmp_path)})
    stats = executors.execute("flaky", ok, 2, 2, None, 1)
    assert (stats.items, stats.rows) == (2, 2)
    assert len(list(tmp_path.glob("0.*"))) == 2 and len(list(tmp_path.glob("1.*"))) == 1
    bad = executors.item_dataset([{"i": 2}]).map_batches(_flaky, batch_size=1, fn_kwargs={"marks": str(tmp_path)})
    with pytest.raises(Exception, match="item 2 failed"):
        executors.execute("flaky", bad, 1, 1, None, 1)
    assert len(list(tmp_path.glob("2.*"))) == 1 + ray_cluster.retries


@pytest.mark.slow
def test_a_pool_larger_than_the_cluster_is_refused(ray_cluster: Cluster, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="replicas 3 x cpus_per_replica 1 exceeds the cluster's 2 CPUs"):
        commands.sample(tmp_path / "run", model="smollm2-135m", problems="arith", limit=2, n=2,
                        sampling=SAMPLING, cluster=Cluster(replicas=3))
    with pytest.raises(ValueError, match="cpus_per_replica 4"):
        commands.score(_verified_store(tmp_path / "scored").root, cluster=Cluster(cpus_per_replica=4))


def test_counts_refuse_unverified_samples(tmp_path: Path) -> None:
    root = _verified_store(tmp_path / "run").root
    with pytest.raises(ValueError, match="6 of 6 samples are not verified yet"):
        commands.write_counts(root, tmp_path / "counts.csv")


# -- a stage's driver killed on Ray, then a rerun ---------------------------------------------------------
# The driver (its own local Ray instance) runs one stage; a setup hook in every Ray worker wraps the
# shard writer so that, once the stage's folder holds `at` shards, the worker SIGKILLs the driver and
# itself (once: an O_EXCL marker). One worker, so the kill point is exact whatever the machine's load.
_KILLED_ON_RAY = """
import os, signal, sys
from passkcore.pipeline.commands import execute, sample
from passkcore.pipeline.executors import Cluster
from passkcore.pipeline.stages import ScoreStage, VerifyStage
from passkcore.sampling import SamplingConfig

root, kind, at, scorer, marker = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
driver = os.getpid()

def hook():
    import passkcore.pipeline.store as store  # the one shard writer's file step
    from passkcore.pipeline.run import shard_files
    real = store.write_shard
    def dying(table, folder, name):
        out = real(table, folder, name)
        if len(shard_files(folder)) >= at:
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return out
            os.kill(driver, signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)
        return out
    store.write_shard = dying

env = {"runtime_env": {"env_vars": {"VLLM_LOGGING_LEVEL": "ERROR"}, "worker_process_setup_hook": hook}}
cluster = Cluster(num_cpus=2, replicas=1, verify_workers=1, extra=env)
if kind == "sample":
    sample(root, model="smollm2-135m", problems="arith", limit=6, n=4, label="base", batch_requests=1,
           sampling=SamplingConfig(temperature=1.0, max_tokens=24, chunk=2), cluster=cluster, dtype="bfloat16")
else:
    stage = (VerifyStage(root, workers=1, batch=3) if kind == "verify" else
             ScoreStage(root, scorer=scorer, temperatures=(1.0, 0.5), backend="torch", batch=4))
    execute(stage, cluster)
"""


def _kill_driver_on_ray(root: Path, kind: str, at: int, scorer: str = "", timeout_s: float = 600) -> None:
    """Runs the stage in a driver that a Ray worker kills at its `at`-th shard; then removes whatever
    the driver's session left running (its Ray instance)."""
    import psutil

    proc = subprocess.Popen([*PASSK[:1], "-c", _KILLED_ON_RAY, str(root), kind, str(at), scorer,
                             str(root.parent / f"killed-{kind}")], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=timeout_s)
    finally:
        for p in psutil.process_iter():
            try:
                if os.getsid(p.pid) == proc.pid:
                    p.kill()
            except (ProcessLookupError, psutil.Error):
                pass
    assert proc.returncode == -signal.SIGKILL, err.decode(errors="replace")[-3000:]
    assert (root.parent / f"killed-{kind}").exists()  # killed by the worker, at the shard chosen


def _keys_once(folder: Path) -> list[tuple[Any, ...]]:
    keys: list[tuple[Any, ...]] = []
    for path in shard_files(folder):
        t = pq.read_table(path, columns=["problem_id", "sample_index"])
        keys.extend(zip(t.column("problem_id").to_pylist(), t.column("sample_index").to_pylist()))
    assert len(keys) == len(set(keys))
    return keys


@pytest.mark.slow
def test_verify_on_ray_killed_then_rerun_stores_every_key_once(ray_cluster: Cluster, tmp_path: Path) -> None:
    from benches.synthetic import make_run
    from passkcore.pipeline.commands import execute

    store = make_run(tmp_path / "run", 4, 6, shard_rows=6, verdicts=False)  # 24 samples: 8 items of 3
    _kill_driver_on_ray(store.root, "verify", at=2)
    folder = store.folder("verdicts", "m")
    assert len(shard_files(folder)) == 2
    stats = execute(VerifyStage(str(store.root), workers=1, batch=3), ray_cluster)
    assert (stats.items, stats.rows, stats.resumed) == (6, 18, 0)  # only what was missing
    assert len(_keys_once(folder)) == 24 and sum(r["n"] for r in SampleStore(store.root).counts().to_pylist()) == 24


@pytest.mark.slow
def test_score_on_ray_killed_then_rerun_stores_every_key_once(ray_cluster: Cluster, tmp_path: Path) -> None:
    from benches.synthetic import make_run
    from passkcore.pipeline.commands import execute
    from passkcore.pipeline.stages import ScoreStage

    store = make_run(tmp_path / "run", 6, 4, tokens=24, shard_rows=4)  # 6 items of 4 rows, 2 temperatures
    tiny = str(tiny_llama(tmp_path / "tiny"))
    stage = ScoreStage(str(store.root), scorer=tiny, backend="torch", temperatures=(1.0, 0.5), batch=4)
    _kill_driver_on_ray(store.root, "score", at=2, scorer=tiny)
    # Killed as the second item wrote its first temperature's shard: 2 + 1 shards stored.
    assert sorted(len(shard_files(store.folder("scores", label))) for label in stage.labels) == [1, 2]
    assert len(stage.plan()) == 5
    stats = execute(stage, ray_cluster)
    assert (stats.items, stats.rows) == (5, 20)
    for label in stage.labels:
        assert len(_keys_once(store.folder("scores", label))) == 24
    assert ScoreStage(str(store.root), scorer=tiny, backend="torch", temperatures=(1.0, 0.5), batch=4).plan() == []
