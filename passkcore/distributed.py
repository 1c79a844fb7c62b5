"""The stages on Ray, under their first names: ``sample_run``, ``verify_run``, ``score_run``,
``counts``. Each is ``passkcore.pipeline.commands``' stage (the same plan, items and shards as the
single-process run) with the Ray executor: vLLM replicas and Scorers in actor pools (one replica per
``tensor_parallel_size`` GPUs, or 1 without GPUs), verification in CPU tasks. See
``passkcore.pipeline.executors`` for retries and exactly-once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional, Union

import pyarrow as pa

from passkcore.pipeline import commands
from passkcore.pipeline.executors import Cluster, Progress, StageStats, connect
from passkcore.pipeline.run import shard_name
from passkcore.pipeline.store import SampleStore
from passkcore.sampling import SamplingConfig

__all__ = ["Cluster", "StageStats", "connect", "counts", "sample_run", "score_run", "shard_name", "verify_run"]


def sample_run(
    out: Union[str, Path], *, model: str, problems: str, n: int, label: Optional[str] = None,
    limit: Optional[int] = None, sampling: SamplingConfig = SamplingConfig(),  # noqa: B008 - frozen
    problem_seed: int = 0, batch_requests: int = 16, cluster: Cluster = Cluster(),  # noqa: B008 - frozen
    progress: Progress = None, template: Any = None, fields: Optional[dict[str, Any]] = None,
) -> tuple[SampleStore, StageStats]:
    """``runs.sample_run`` on Ray: the missing chunks, ``batch_requests`` requests per item, spread
    over vLLM replicas (each prompts under the template the manifest keeps for the label). Same seeds,
    same keys, same store as the single-process stage."""
    return commands.sample(out, model=model, problems=problems, n=n, label=label, limit=limit, sampling=sampling,
                           problem_seed=problem_seed, batch_requests=batch_requests,
                           tensor_parallel_size=cluster.tensor_parallel_size, cluster=cluster, progress=progress,
                           template=template, fields=fields)


def verify_run(
    run: Union[str, Path], *, timeout_s: float = 10.0, memory_mb: int = 1024, cluster: Cluster = Cluster(),  # noqa: B008 - frozen
    progress: Progress = None, batch: int = 256, math_extract: str = "fallback", options: Optional[dict] = None,
) -> tuple[SampleStore, StageStats]:
    """``runs.verify_run`` on Ray: one CPU task per item (at most ``batch`` samples of one shard)."""
    opts = {"timeout_s": timeout_s, "memory_mb": memory_mb, "math_extract": math_extract, **(options or {})}
    return commands.verify(run, options=opts, batch=batch, cluster=cluster, progress=progress)


def score_run(
    run: Union[str, Path], *, scorer: str = "smollm2-135m", backend: str = "fused",
    temperatures: Sequence[float] = (1.0,), out: Optional[Union[str, Path]] = None, label: Optional[str] = None,
    cluster: Cluster = Cluster(),  # noqa: B008 - frozen
    progress: Progress = None, batch_rows: int = 256,
) -> tuple[pa.Table, StageStats]:
    """``runs.score_run`` on Ray: one Scorer per GPU (an actor pool), one item per <= ``batch_rows``
    samples of one shard."""
    store, labels, stats = commands.score(run, scorer=scorer, backend=backend, temperatures=temperatures, label=label,
                                          batch=batch_rows, cluster=cluster, progress=progress)
    if out is not None:
        commands.export_scores(store, labels, out)
    return store.scores(labels), stats


def counts(run: Union[str, Path], *, cluster: Cluster = Cluster(),  # noqa: B008 - frozen
           progress: Progress = None) -> pa.Table:
    """``SampleStore.counts``: an Arrow join and group-by over key and verdict columns, on the driver
    (a million samples' keys read and counted in seconds: nothing to gain from the cluster)."""
    table = SampleStore(run).counts()
    if progress:
        progress(1, 1)
    return table
