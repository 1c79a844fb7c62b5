"""The sample, verify, score and count stages as Ray Data pipelines over a run's store.

The driver plans: it reads only key columns to find what the store is missing and cuts that into
work items. Ray Data executes: vLLM replicas (an actor pool, one replica per ``tensor_parallel_size``
GPUs) sample, CPU tasks verify, one ``Scorer`` per GPU (another actor pool) scores. Workers write
the store's own shards, so a cluster run and a single-machine run leave the same layout, read by
the same code, and give the same numbers.

Exactly once, with retries: each item covers a disjoint set of keys planned from what was stored
when the stage started, and writes one shard whose name is a digest of those keys. The shard
appears whole (temporary file, then rename) or not at all, and a shard already in place is never
rewritten. A worker killed mid-item leaves at most a dot-prefixed temporary file, which readers
skip; Ray Data restarts the actor or retries the task (its defaults for map operators: actors
``max_restarts=-1``, ``max_task_retries=-1``; tasks ``max_retries=-1``), and an item whose shard
already exists reports it without recomputing it. An exception inside an item is retried
``retries`` times before the stage fails; rerunning the stage then plans only what is missing.

The run directory must be one path that every node sees (NFS, Lustre, a node-local disk for a
one-node cluster), and passkcore must be installed on every node: workers import it and open the
store by path. Ray is imported only by the functions here, and only when they are called.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from passkcore.runs import Progress, collect_scores, open_sampling, run_problems, scored_keys
from passkcore.sampling import PlannedRequest, SamplingConfig
from passkcore.store import (
    COUNTS_SCHEMA,
    SAMPLE_SCHEMA,
    VERDICT_SCHEMA,
    SampleStore,
    _atomic_write_table,
    check_label,
    shard_files,
)
from passkcore.templates import template_from_settings

Key = tuple[str, int]


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


def shard_name(kind: str, model: str, keys: Iterable[Key]) -> str:
    """The shard a work item writes: a digest of what it covers, the same on every attempt."""
    text = json.dumps([kind, model, sorted(keys)], separators=(",", ":"))
    return "w" + hashlib.sha256(text.encode()).hexdigest()[:40]


def _execute(stage: str, ds: Any, items: int, total: int, progress: Progress, workers: int) -> StageStats:
    """Streams the items' reports back to the driver, ticking one progress bar."""
    stats = StageStats(stage, workers=workers)
    start = time.perf_counter()
    if progress:
        progress(0, total)
    if items:
        for row in ds.iter_rows():
            report = json.loads(row["report"])
            stats.items += 1
            stats.rows += report["rows"]
            stats.tokens += report.get("tokens", 0)
            stats.resumed += int(report.get("resumed", False))
            stats.busy_seconds += report.get("seconds", 0.0)
            if progress:
                progress(stats.rows, total)
    stats.seconds = time.perf_counter() - start
    return stats


def _dataset(items: list[dict[str, Any]]) -> Any:
    """One block per item, so each item is its own task and its own retry unit."""
    import ray.data

    rows = [{"item": json.dumps(item)} for item in items] or [{"item": "{}"}]
    return ray.data.from_items(rows, override_num_blocks=max(1, len(rows)))


def _each_item(batch: dict[str, np.ndarray], run: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, np.ndarray]:
    reports = []
    for text in batch["item"]:
        item = json.loads(str(text))
        start = time.perf_counter()
        report = run(item)
        report.setdefault("seconds", time.perf_counter() - start)
        reports.append(json.dumps(report))
    return {"report": np.array(reports, dtype=object)}


@lru_cache(maxsize=8)
def _problems(root: str) -> dict[str, Any]:
    return {p.id: p for p in run_problems(SampleStore(root))}


# -- sampling ---------------------------------------------------------------------------------------
class _SampleReplica:
    """One vLLM engine; writes one sample shard per item."""

    def __init__(self, root: str, label: str, model: str, sampling: dict[str, Any], tensor_parallel_size: int,
                 template: Any = None) -> None:
        from passkcore.sampling import make_llm

        # Ray gives each replica its CPUs through OMP_NUM_THREADS; vLLM's own binding would pin every
        # replica on a node to the same cores.
        os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
        self.root, self.label = root, label
        self.sampling = SamplingConfig(**sampling)
        self.llm = make_llm(model, seed=self.sampling.seed, tensor_parallel_size=tensor_parallel_size)
        self.prompts: dict[str, list[int]] = {}
        self.template = template

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return _each_item(batch, self._item)

    def _item(self, item: dict[str, Any]) -> dict[str, Any]:
        from passkcore.sampling import generate_requests

        folder = Path(self.root) / "samples" / self.label
        done = folder / f"{item['shard']}.parquet"
        if done.exists():
            lengths = pq.read_table(done, columns=["response_token_ids"]).column("response_token_ids")
            return {"rows": len(lengths), "tokens": int(sum(len(x) for x in lengths.to_pylist())), "resumed": True}
        problems = _problems(self.root)
        requests = [PlannedRequest(problems[r["problem_id"]], r["chunk_index"], r["size"], frozenset(r["wanted"]))
                    for r in item["requests"]]
        rows = generate_requests(self.llm, requests, self.sampling, model=self.label, prompts=self.prompts,
                                 template=self.template)
        table = pa.Table.from_pylist([{name: row.get(name) for name in SAMPLE_SCHEMA.names} for row in rows],
                                     schema=SAMPLE_SCHEMA)
        _atomic_write_table(table, folder, item["shard"])
        return {"rows": len(rows), "tokens": sum(len(r["response_token_ids"]) for r in rows)}


def sample_run(
    out: Union[str, Path], *, model: str, problems: str, n: int, label: Optional[str] = None,
    limit: Optional[int] = None, sampling: SamplingConfig = SamplingConfig(),  # noqa: B008 - frozen
    problem_seed: int = 0,
    batch_requests: int = 16, cluster: Cluster = Cluster(), progress: Progress = None, template: Any = None,
    fields: Optional[dict[str, Any]] = None,
) -> tuple[SampleStore, StageStats]:
    """``runs.sample_run`` on Ray: the missing chunks, ``batch_requests`` requests per item, spread
    over vLLM replicas. Same seeds, same keys, same store as the single-process stage."""
    from passkcore.models import resolve_model
    from passkcore.sampling import plan_requests

    store, label, chosen, stored = open_sampling(out, model=model, problems=problems, n=n, label=label, limit=limit,
                                                 sampling=sampling, problem_seed=problem_seed,
                                                 batch_requests=batch_requests, template=template, fields=fields)
    path = resolve_model(model)  # converted once, on the driver's file system, before any replica starts
    plan = plan_requests(chosen, n, sampling, lambda pid: stored.get(pid, set()))
    items = []
    for b in range(0, len(plan), batch_requests):
        batch = plan[b:b + batch_requests]
        keys = [(r.problem.id, i) for r in batch for i in r.wanted]
        items.append({"shard": shard_name("samples", label, keys), "requests": [
            {"problem_id": r.problem.id, "chunk_index": r.chunk_index, "size": r.size, "wanted": sorted(r.wanted)}
            for r in batch]})
    total = sum(len(r.wanted) for r in plan)
    connect(cluster)
    replicas, gpus = _replicas(cluster, cluster.tensor_parallel_size, len(items))
    ds = _dataset(items).map_batches(
        _SampleReplica, batch_size=1, compute=_actors(replicas), num_gpus=gpus,
        num_cpus=cluster.cpus_per_replica,
        fn_constructor_kwargs={"root": str(store.root.resolve()), "label": label, "model": str(path),
                               "sampling": sampling.as_dict(), "tensor_parallel_size": cluster.tensor_parallel_size,
                               "template": template_from_settings(store.manifest["models"][label])})
    return store, _execute("sample", ds, len(items), total, progress, replicas)


# -- verification -----------------------------------------------------------------------------------
def _shard_keys(path: Path) -> list[Key]:
    table = pq.read_table(path, columns=["problem_id", "sample_index"])
    return list(zip(table.column("problem_id").to_pylist(), table.column("sample_index").to_pylist()))


def _rows_for(root: str, relative: str, keys: Sequence[Sequence[Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
    """The rows of one sample shard with these keys, in the keys' order."""
    wanted = {(str(k[0]), int(k[1])) for k in keys}
    table = pq.read_table(Path(root) / relative, columns=list(columns))
    return [r for r in table.to_pylist() if (r["problem_id"], r["sample_index"]) in wanted]


def _verify_item(item: dict[str, Any], root: str, timeout_s: float, memory_mb: int) -> dict[str, Any]:
    from passkcore.verify import verify_rows

    folder = Path(root) / "verdicts" / item["model"]
    done = folder / f"{item['shard']}.parquet"
    if done.exists():
        return {"rows": pq.read_metadata(done).num_rows, "resumed": True}
    rows = _rows_for(root, item["file"], item["keys"], ["model", "problem_id", "sample_index", "response"])
    # One verifier process per task: Ray schedules the tasks, one per CPU.
    verdicts = verify_rows(rows, _problems(root), workers=1, timeout_s=timeout_s, memory_mb=memory_mb)
    table = pa.Table.from_pylist([
        {"model": r["model"], "problem_id": r["problem_id"], "sample_index": r["sample_index"], **v.as_row()}
        for r, v in zip(rows, verdicts)], schema=VERDICT_SCHEMA)
    _atomic_write_table(table, folder, item["shard"])
    return {"rows": len(rows), "correct": sum(v.passed for v in verdicts)}


def _verify_batch(batch: dict[str, np.ndarray], root: str, timeout_s: float, memory_mb: int) -> dict[str, np.ndarray]:
    return _each_item(batch, lambda item: _verify_item(item, root, timeout_s, memory_mb))


def _missing(store: SampleStore, model: str, have: set[Key]) -> list[tuple[Path, list[Key]]]:
    """Per sample shard of ``model``: its keys not in ``have``."""
    out = []
    for path in shard_files(store.root / "samples" / model):
        keys = [k for k in _shard_keys(path) if k not in have]
        if keys:
            out.append((path, keys))
    return out


def verify_run(
    run: Union[str, Path], *, timeout_s: float = 10.0, memory_mb: int = 1024, cluster: Cluster = Cluster(),
    progress: Progress = None,
) -> tuple[SampleStore, StageStats]:
    """``runs.verify_run`` on Ray: one task per sample shard with unverified samples, on CPU workers."""
    store = SampleStore(run)
    root = str(store.root.resolve())
    items = []
    for model in store.models:
        for path, keys in _missing(store, model, store.verdict_keys(model)):
            items.append({"model": model, "file": str(path.relative_to(store.root)), "keys": keys,
                          "shard": shard_name("verdicts", model, keys)})
    total = sum(len(i["keys"]) for i in items)
    ray = connect(cluster)
    workers = cluster.verify_workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    ds = _dataset(items).map_batches(_verify_batch, batch_size=1, num_cpus=1, compute=_tasks(workers),
                                     fn_kwargs={"root": root, "timeout_s": timeout_s, "memory_mb": memory_mb})
    return store, _execute("verify", ds, len(items), total, progress, workers)


# -- scoring ----------------------------------------------------------------------------------------
class _ScoreReplica:
    """One Scorer (one GPU, or CPU threads); writes one score shard per item and temperature."""

    def __init__(self, root: str, scorer: str, backend: str, label: Optional[str], temperatures: list[float]) -> None:
        from passkcore.scoring import Scorer

        self.root, self.temperatures = root, temperatures
        self.engine = Scorer(scorer, backend=backend, label=label)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return _each_item(batch, self._item)

    def _item(self, item: dict[str, Any]) -> dict[str, Any]:
        folders = [Path(self.root) / "scores" / self.engine.label_for(t) for t in self.temperatures]
        needed = [i for i, shard in enumerate(item["shards"])
                  if shard is not None and not (folders[i] / f"{shard}.parquet").exists()]
        if not needed:
            return {"rows": len(item["keys"]), "resumed": True}
        rows = _rows_for(self.root, item["file"], item["keys"],
                         ["model", "problem_id", "sample_index", "prompt_token_ids", "response_token_ids"])
        temps = [self.temperatures[i] for i in needed]
        for i, table in zip(needed, self.engine.score_at(rows, temps)):
            want = {(str(k[0]), int(k[1])) for k in item["need"][i]}
            keep = [j for j, r in enumerate(rows) if (r["problem_id"], r["sample_index"]) in want]
            _atomic_write_table(table.take(keep), folders[i], item["shards"][i])
        return {"rows": len(rows), "tokens": sum(len(r["response_token_ids"]) for r in rows)}


def score_run(
    run: Union[str, Path], *, scorer: str = "smollm2-135m", backend: str = "fused",
    temperatures: Sequence[float] = (1.0,), out: Optional[Union[str, Path]] = None, label: Optional[str] = None,
    cluster: Cluster = Cluster(), progress: Progress = None,
) -> tuple[pa.Table, StageStats]:
    """``runs.score_run`` on Ray: one item per sample shard with unscored samples, one Scorer per GPU."""
    from passkcore.scoring import Scorer

    store = SampleStore(run)
    root = str(store.root.resolve())
    probe = Scorer(scorer, backend=backend, label=label)  # validates the arguments; loads no weights
    folders = [store.root / "scores" / check_label(probe.label_for(t)) for t in temperatures]
    have = [scored_keys(folder) for folder in folders]
    items = []
    for model in store.models:
        for path in shard_files(store.root / "samples" / model):
            keys = _shard_keys(path)
            need = [[k for k in keys if (model, *k) not in h] for h in have]
            union = sorted({k for ks in need for k in ks})
            if union:
                items.append({"file": str(path.relative_to(store.root)), "keys": union, "need": need,
                              "shards": [shard_name(f"scores/{f.name}", model, ks) if ks else None
                                         for f, ks in zip(folders, need)]})
    total = sum(len(i["keys"]) for i in items)
    connect(cluster)
    replicas, gpus = _replicas(cluster, 1, len(items))
    ds = _dataset(items).map_batches(
        _ScoreReplica, batch_size=1, compute=_actors(replicas), num_gpus=gpus,
        num_cpus=cluster.cpus_per_replica,
        fn_constructor_kwargs={"root": root, "scorer": str(probe.path), "backend": backend, "label": probe.label,
                               "temperatures": [float(t) for t in temperatures]})
    stats = _execute("score", ds, len(items), total, progress, replicas)
    return collect_scores(folders, out), stats


# -- counts -----------------------------------------------------------------------------------------
def _partial_counts(batch: dict[str, np.ndarray], root: str) -> dict[str, np.ndarray]:
    """Per shard: (model, problem_id) -> [samples, verdicts, correct]."""

    def one(item: dict[str, Any]) -> dict[str, Any]:
        columns = ["model", "problem_id"] + (["correct"] if item["kind"] == "verdicts" else [])
        table = pq.read_table(Path(root) / item["file"], columns=columns)
        partial: dict[str, list[int]] = {}
        flags = table.column("correct").to_pylist() if item["kind"] == "verdicts" else None
        pairs = zip(table.column("model").to_pylist(), table.column("problem_id").to_pylist())
        for j, (model, pid) in enumerate(pairs):
            cell = partial.setdefault(json.dumps([model, pid]), [0, 0, 0])
            if flags is None:
                cell[0] += 1
            else:
                cell[1] += 1
                cell[2] += int(bool(flags[j]))
        return {"rows": table.num_rows, "partial": partial}

    return _each_item(batch, one)


def merge_counts(partials: Iterable[dict[str, Sequence[int]]]) -> dict[tuple[str, str], list[int]]:
    """Sums per-shard [samples, verdicts, correct] by (model, problem_id): exact integer sums."""
    merged: dict[tuple[str, str], list[int]] = {}
    for partial in partials:
        for key, cell in partial.items():
            model, pid = json.loads(key)
            total = merged.setdefault((model, pid), [0, 0, 0])
            for j in range(3):
                total[j] += int(cell[j])
    return merged


def counts(run: Union[str, Path], *, cluster: Cluster = Cluster(), progress: Progress = None) -> pa.Table:
    """``SampleStore.counts`` on Ray: each shard counted where it lies, the partial counts summed
    exactly on the driver; the estimator then runs once on the merged (n, c)."""
    store = SampleStore(run)
    root = str(store.root.resolve())
    items = [{"kind": kind, "file": str(p.relative_to(store.root))}
             for kind in ("samples", "verdicts") for model in store.models
             for p in shard_files(store.root / kind / model)]
    if not any(i["kind"] == "samples" for i in items):
        raise ValueError(f"{store.root}: no samples stored")
    ray = connect(cluster)
    workers = cluster.verify_workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    ds = _dataset(items).map_batches(_partial_counts, batch_size=1, num_cpus=1, compute=_tasks(workers),
                                     fn_kwargs={"root": root})
    partials = []
    for done, row in enumerate(ds.iter_rows(), 1):
        partials.append(json.loads(row["report"])["partial"])
        if progress:
            progress(done, len(items))
    merged = merge_counts(partials)
    samples = sum(cell[0] for cell in merged.values())
    extra = [key for key, cell in merged.items() if cell[1] > cell[0]]
    if extra:
        raise ValueError(f"{store.root}: more verdicts than samples for (model, problem_id) {extra[0]}")
    unverified = sum(cell[0] - cell[1] for cell in merged.values())
    if unverified:
        raise ValueError(f"{store.root}: {unverified} of {samples} samples are not verified yet; "
                         "run `passk verify` first")
    ordered = sorted(merged.items())
    return pa.table({"problem_id": [k[1] for k, _ in ordered], "model": [k[0] for k, _ in ordered],
                     "n": [c[0] for _, c in ordered], "c": [c[2] for _, c in ordered]}, schema=COUNTS_SCHEMA)
