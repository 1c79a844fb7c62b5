"""Executors: run a stage's items, the same items into the same shards, either in this process
(``run_local``: a loop, memory bounded by one item) or as Ray Data tasks and actor pools
(``run_ray``: vLLM replicas and Scorers in actor pools, verification in CPU tasks).

On Ray the driver plans and the cluster works: each item is its own block, so its own task and retry
unit. A worker killed mid-item leaves at most a dot-prefixed temporary file, which readers skip; Ray
Data restarts the actor or retries the task (its defaults for map operators: actors
``max_restarts=-1``, ``max_task_retries=-1``; tasks ``max_retries=-1``), and an item whose shard
already exists reports it without recomputing it. An exception inside an item is retried
``retries`` times before the stage fails; rerunning the stage then plans only what is missing.

The run directory must be one path that every node sees (NFS, Lustre, a node-local disk for a
one-node cluster), and passkcore must be installed on every node: workers import it and open the
store by path. Ray is imported only by the Ray functions here, and only when they are called.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Protocol

import numpy as np

from passkcore.extras import require
from passkcore.memory import release_free_memory

Progress = Optional[Callable[[int, int], None]]  # (done now, total) after each item
Item = dict[str, Any]  # a plan's unit of work: plain JSON (rows, shard names), sent to Ray workers as text
Report = dict[str, Any]  # what an item did: rows, tokens, resumed, seconds


class Stage(Protocol):
    """What both executors run. A stage pickles to its settings (Ray workers open the store and load
    their engine in ``setup``); ``plan`` reads key columns only; ``run`` does one item into its shard;
    ``run_many`` does several, in order (an engine that batches across items, such as vLLM's, streams
    them through one loop)."""

    @property
    def name(self) -> str: ...

    @property
    def pool(self) -> str:
        """``actors`` (Ray: one engine per replica in an actor pool) or ``tasks`` (CPU tasks)."""

    @property
    def gpus_per_replica(self) -> int: ...

    def plan(self) -> list[Item]: ...

    def setup(self) -> None: ...

    def close(self) -> None:
        """Shuts down the engine ``setup`` started (the in-process executor calls it when the items are done)."""

    def run(self, item: Item) -> Report: ...

    def run_many(self, items: Sequence[Item]) -> Iterator[Report]: ...


def ray_worker_env() -> None:
    """Ray gives each replica its CPUs through OMP_NUM_THREADS; vLLM's own binding would pin every
    replica on a node to the same cores."""
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")


@dataclass
class StageStats:
    """What one stage did across the cluster: items (shards), rows, tokens, wall seconds."""

    stage: str
    items: int = 0
    rows: int = 0
    tokens: int = 0
    resumed: int = 0  # items whose shard a previous attempt had already written
    seconds: float = 0.0
    workers: int = 0
    busy_seconds: float = 0.0  # summed over workers: the work itself, without Ray's overhead

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def add(self, report: dict[str, Any]) -> None:
        self.items += 1
        self.rows += report["rows"]
        self.tokens += report.get("tokens", 0)
        self.resumed += int(report.get("resumed", False))
        self.busy_seconds += report.get("seconds", 0.0)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_per_s": self.rows_per_s, "tokens_per_s": self.tokens_per_s}


@dataclass(frozen=True)
class Cluster:
    """Where and how wide the stages run.

    ``address`` None (or "local") starts a local Ray instance (``num_cpus`` caps it); otherwise it
    joins that cluster ("auto", "ray://host:10001", "host:6379"). ``replicas`` is the number of vLLM
    or Scorer replicas (default: one per ``tensor_parallel_size`` GPUs, or 1 without GPUs);
    ``cpus_per_replica`` the CPUs (OpenMP threads) each replica gets; ``verify_workers`` the CPU
    tasks verifying at once (default: every CPU in the cluster)."""

    address: Optional[str] = None
    num_cpus: Optional[int] = None
    replicas: Optional[int] = None
    tensor_parallel_size: int = 1
    cpus_per_replica: int = 1
    verify_workers: Optional[int] = None
    retries: int = 3
    extra: dict[str, Any] = field(default_factory=dict)  # more ray.init() keyword arguments

    def __post_init__(self) -> None:
        sizes = {"num_cpus": True, "replicas": True, "verify_workers": True, "tensor_parallel_size": False,
                 "cpus_per_replica": False, "retries": False}
        for name, optional in sizes.items():
            value = getattr(self, name)
            if value is None and optional:
                continue
            lowest = 0 if name == "retries" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                raise ValueError(f"{name} must be an integer >= {lowest}, got {value!r}")


def _check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """Fails fast where nothing listens at ``host:port``: ray.init retries an unreachable GCS 20 times
    at ~40 s each (measured here: over 5 minutes before any error). "auto" is left to Ray."""
    import socket

    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ConnectionError(f"could not join the Ray cluster at {address!r}: nothing answers there ({exc})") from exc


def _token_auth_if_available() -> None:
    """Ray 2.60's `ray start` turns token authentication on when a token exists (~/.ray/auth_token,
    RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH), but ray.init(address=...) presents it only with
    RAY_AUTH_MODE=token (seen here: "InvalidAuthToken ... RAY_AUTH_MODE is currently 'disabled'").
    Joining does what starting does; a mode the user set wins."""
    if "RAY_AUTH_MODE" in os.environ:
        return
    token_file = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
    if os.environ.get("RAY_AUTH_TOKEN") or token_file.is_file():
        os.environ["RAY_AUTH_MODE"] = "token"


def connect(cluster: Cluster = Cluster()) -> Any:
    """Starts or joins Ray (once per process) and sets Ray Data up for these pipelines."""
    require("ray", by="--ray (Ray Data)")
    import ray
    from ray.data import DataContext

    if not ray.is_initialized():
        local = cluster.address in (None, "", "local")
        # Workers forward their logs to the driver; vLLM's start-up lines (~40 INFO and ~230 WARNING
        # per replica of SmolLM2, most about its GGUF weights' dtype) would bury the progress bar.
        # A level the user set wins.
        env = {"VLLM_LOGGING_LEVEL": os.environ.get("VLLM_LOGGING_LEVEL", "ERROR")}
        kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": "WARNING",
                                  "runtime_env": {"env_vars": env}, **cluster.extra}
        if local:
            # "local" always starts a new instance, even where `ray start` left a cluster running.
            kwargs.update(address="local", num_cpus=cluster.num_cpus)
        else:
            kwargs["address"] = cluster.address
            _check_reachable(str(cluster.address))
            _token_auth_if_available()
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError) as exc:
            raise ConnectionError(f"could not join the Ray cluster at {cluster.address!r}: {exc}") from exc
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False  # the driver draws one bar for the whole cluster
    ctx.print_on_execution_start = False
    ctx.retried_map_errors = cluster.retries > 0
    ctx.max_map_retries = cluster.retries
    return ray


def _replicas(cluster: Cluster, gpus_each: int, items: int) -> tuple[int, int]:
    """(replicas, GPUs per replica): one replica per ``gpus_each`` GPUs, or 1 on a CPU cluster; never
    more than items. A pool larger than the cluster would wait for resources forever: refused."""
    import ray

    have = ray.cluster_resources()
    gpus, cpus = int(have.get("GPU", 0)), int(have.get("CPU", 0))
    if gpus and gpus < gpus_each:
        raise ValueError(f"tensor_parallel_size {gpus_each} needs {gpus_each} GPUs; the cluster has {gpus}")
    replicas = cluster.replicas or (gpus // gpus_each if gpus else 1)
    if gpus and replicas * gpus_each > gpus:
        raise ValueError(f"replicas {replicas} x {gpus_each} GPUs each exceeds the cluster's {gpus} GPUs")
    if replicas * cluster.cpus_per_replica > cpus:
        raise ValueError(f"replicas {replicas} x cpus_per_replica {cluster.cpus_per_replica} exceeds the "
                         f"cluster's {cpus} CPUs")
    return min(replicas, max(1, items)), gpus_each if gpus else 0


def _actors(replicas: int) -> Any:
    """A fixed pool of model replicas. Two items in flight per replica: the
    next item waits in the replica's queue instead of the replica waiting on the driver."""
    from ray.data import ActorPoolStrategy

    return ActorPoolStrategy(size=replicas, max_tasks_in_flight_per_actor=2)


def _tasks(workers: int) -> Any:
    from ray.data import TaskPoolStrategy

    return TaskPoolStrategy(size=workers)


def item_dataset(items: list[dict[str, Any]]) -> Any:
    """One block per item, so each item is its own task and its own retry unit."""
    import ray.data

    rows = [{"item": json.dumps(item)} for item in items] or [{"item": "{}"}]
    return ray.data.from_items(rows, override_num_blocks=max(1, len(rows)))


def each_item(batch: dict[str, np.ndarray], run: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, np.ndarray]:
    reports = []
    for text in batch["item"]:
        item = json.loads(str(text))
        start = time.perf_counter()
        report = run(item)
        report.setdefault("seconds", time.perf_counter() - start)
        reports.append(json.dumps(report))
    return {"report": np.array(reports, dtype=object)}



def execute(stage: str, ds: Any, items: int, total: int, progress: Progress, workers: int) -> StageStats:
    """Streams the items' reports back to the driver, ticking one progress bar."""
    stats = StageStats(stage, workers=workers)
    start = time.perf_counter()
    if progress:
        progress(0, total)
    if items:
        for row in ds.iter_rows():
            stats.add(json.loads(row["report"]))
            if progress:
                progress(stats.rows, total)
    stats.seconds = time.perf_counter() - start
    return stats


def run_local(stage: Stage, items: Sequence[Item], progress: Progress = None) -> StageStats:
    """The in-process executor: one item after another; nothing outlives its item but the engine."""
    stats = StageStats(stage.name, workers=1)
    total = sum(i["rows"] for i in items)
    start = time.perf_counter()
    if progress:
        progress(0, total)
    # Planning read the run's key columns; what it freed goes back before an engine loads on top of it.
    release_free_memory(arrow=True)
    reports = stage.run_many(items)  # sampling streams them through one engine; the others: one by one
    began = time.perf_counter()
    try:
        for report in reports:
            report.setdefault("seconds", time.perf_counter() - began)
            began = time.perf_counter()
            release_free_memory()  # an item's rows, freed: nothing outlives its item
            stats.add(report)
            if progress:
                progress(stats.rows, total)
    finally:
        stage.close()  # the engine the stage started, shut down here rather than at interpreter exit
    stats.seconds = time.perf_counter() - start
    return stats


class StageActor:
    """One replica of a stage's engine (vLLM, a Scorer) in a Ray actor pool."""

    def __init__(self, stage: Stage) -> None:
        ray_worker_env()
        self.stage = stage
        self.stage.setup()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return each_item(batch, self.stage.run)

    def __del__(self) -> None:
        self.stage.close()


def stage_task(batch: dict[str, np.ndarray], stage: Stage) -> dict[str, np.ndarray]:
    return each_item(batch, stage.run)


def run_ray(stage: Stage, items: Sequence[Item], cluster: Cluster, progress: Progress = None) -> StageStats:
    """The Ray executor: the same items as Ray Data blocks, through an actor pool (``stage.pool ==
    "actors"``: one engine per replica) or CPU tasks (``"tasks"``)."""
    ray = connect(cluster)
    total = sum(i["rows"] for i in items)
    ds = item_dataset(list(items))
    if stage.pool == "actors":
        replicas, gpus = _replicas(cluster, stage.gpus_per_replica, len(items))
        ds = ds.map_batches(StageActor, batch_size=1, compute=_actors(replicas), num_gpus=gpus,
                            num_cpus=cluster.cpus_per_replica, fn_constructor_kwargs={"stage": stage})
        workers = replicas
    else:
        workers = cluster.verify_workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        ds = ds.map_batches(stage_task, batch_size=1, num_cpus=1, compute=_tasks(workers), fn_kwargs={"stage": stage})
    return execute(stage.name, ds, len(items), total, progress, workers)
