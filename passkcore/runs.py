"""The single-process stages under their first names: ``sample_run``, ``verify_run``, ``score_run``,
``write_counts``. Each is ``passkcore.pipeline.commands``' stage with the in-process executor (the
same stages and items that ``passkcore.distributed`` runs on Ray)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from passkcore.pipeline import commands
from passkcore.pipeline.commands import write_counts
from passkcore.pipeline.executors import Progress
from passkcore.pipeline.store import SampleStore
from passkcore.problems import Problem
from passkcore.sampling import SamplingConfig

__all__ = ["Progress", "open_run", "ppl_summary", "run_problems", "run_scores", "sample_run", "score_run",
           "verify_run", "write_counts"]


def open_run(out: Union[str, Path], problems: Sequence[Problem], spec: dict[str, Any]) -> SampleStore:
    """Creates (or reopens) a run over exactly these problems, kept in RUN/problems.jsonl."""
    return SampleStore.open_run(out, problems, spec)


def run_problems(store: SampleStore) -> list[Problem]:
    """The problems a run was sampled on."""
    return store.problems()


def sample_run(
    out: Union[str, Path, SampleStore], *, model: str, problems: str, n: int, label: Optional[str] = None,
    limit: Optional[int] = None, sampling: SamplingConfig = SamplingConfig(),  # noqa: B008 - frozen
    problem_seed: int = 0, llm: Any = None, progress: Progress = None, batch_requests: int = 16, template: Any = None,
    fields: Optional[dict[str, Any]] = None,
) -> SampleStore:
    """Draws the samples a run is missing for one model label, ``batch_requests`` vLLM requests of
    ``sampling.chunk`` samples per stored shard. ``template``: ``chat`` (default), ``raw``, a built-in
    prompt or a Jinja file (``passkcore.templates``); ``fields``: a problem file's field mapping."""
    store, _ = commands.sample(out, model=model, problems=problems, n=n, label=label, limit=limit, sampling=sampling,
                               problem_seed=problem_seed, batch_requests=batch_requests, llm=llm, progress=progress,
                               template=template, fields=fields)
    return store


def verify_run(
    run: Union[str, Path, SampleStore], *, timeout_s: float = 10.0, memory_mb: int = 1024, workers: Optional[int] = None,
    batch: int = 256, progress: Progress = None, math_extract: str = "fallback",
    options: Optional[Mapping[str, Any]] = None, allow_packages: Sequence[str] = (),
) -> SampleStore:
    """Verifies every stored sample without a verdict, ``batch`` samples per verdict shard; ``options``
    go to ``verify_rows`` with the timeout, memory limit, math extraction policy (``fallback`` or
    ``boxed``) and the packages code may import besides the standard library (``allow_packages``)."""
    opts = {"timeout_s": timeout_s, "memory_mb": memory_mb, "math_extract": math_extract,
            "allow_packages": list(allow_packages), **(options or {})}
    store, _ = commands.verify(run, options=opts, workers=workers, batch=batch, progress=progress)
    return store


def score_run(
    run: Union[str, Path, SampleStore], *, scorer: str = "smollm2-135m", backend: str = "fused",
    temperatures: Sequence[float] = (1.0,), out: Optional[Union[str, Path]] = None, batch_rows: int = 256,
    label: Optional[str] = None, progress: Progress = None,
) -> pa.Table:
    """Scores every stored sample under ``scorer`` at each temperature into RUN/scores/<label>/ shards
    (one backbone pass serves all temperatures; keys already scored are skipped), then returns those
    scorers' scores (also written to ``out``)."""
    store, labels, _ = commands.score(run, scorer=scorer, backend=backend, temperatures=temperatures, label=label,
                                      batch=batch_rows, progress=progress)
    if out is not None:
        commands.export_scores(store, labels, out)
    return store.scores(labels)


def run_scores(run: Union[str, Path], columns: Optional[Sequence[str]] = None) -> pa.Table:
    """Every scorer's scores stored in a run."""
    return SampleStore(run).scores(columns=columns)


def ppl_summary(scores: pa.Table) -> list[dict[str, Any]]:
    """Median and quartiles of PPL per (model, scorer), over rows scored ``ok`` (Arrow sort, numpy quantiles)."""
    if scores.num_rows == 0:
        return []
    table = scores.select(["model", "scorer", "ppl", "status"]).sort_by([("model", "ascending"),
                                                                          ("scorer", "ascending")])
    groups = table.group_by(["model", "scorer"], use_threads=False).aggregate([([], "count_all")])
    ok = pc.equal(table.column("status"), "ok").to_numpy(zero_copy_only=False)
    ppl = table.column("ppl").to_numpy(zero_copy_only=False)
    out, start = [], 0
    for g in groups.sort_by([("model", "ascending"), ("scorer", "ascending")]).to_pylist():
        end = start + g["count_all"]
        values = np.asarray(ppl[start:end][ok[start:end]], dtype=np.float64)
        q = [float(x) for x in np.quantile(values, [0.25, 0.5, 0.75])] if values.size else [None, None, None]
        out.append({"model": g["model"], "scorer": g["scorer"], "samples": end - start, "scored": int(values.size),
                    "q1": q[0], "median": q[1], "q3": q[2]})
        start = end
    return out

