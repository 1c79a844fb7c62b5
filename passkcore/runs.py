"""Resumable pipeline stages over a run directory: sample -> verify -> counts.

Each stage reads what the previous one stored and writes its own shards, skipping keys already
stored, so a stage killed at any point continues where it stopped when run again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import pyarrow as pa

from passkcore.problems import Problem, load_problems
from passkcore.sampling import SamplingConfig
from passkcore.store import SampleStore, check_label

Progress = Optional[Callable[[int, int], None]]  # (done now, total) after each batch


def _problems_file(root: Path) -> Path:
    return root / "problems.jsonl"


def _serialise(problems: Sequence[Problem]) -> str:
    return "".join(json.dumps(asdict(p), sort_keys=True) + "\n" for p in problems)


def open_run(out: Union[str, Path], problems: Sequence[Problem], spec: dict[str, Any]) -> SampleStore:
    """Creates (or reopens) a run over exactly these problems, kept in RUN/problems.jsonl."""
    text = _serialise(problems)
    digest = hashlib.sha256(text.encode()).hexdigest()
    store = SampleStore.create(out, {**spec, "count": len(problems), "sha256": digest})
    path = _problems_file(store.root)
    if not path.is_file():
        tmp = store.root / ".problems.jsonl.tmp"
        tmp.write_text(text)
        tmp.replace(path)
    return store


def run_problems(store: SampleStore) -> list[Problem]:
    """The problems a run was sampled on."""
    path = _problems_file(store.root)
    if not path.is_file():
        raise ValueError(f"{store.root}: problems.jsonl is missing")
    return [Problem(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def sample_run(
    out: Union[str, Path], *, model: str, problems: str, n: int, label: Optional[str] = None,
    limit: Optional[int] = None, sampling: SamplingConfig = SamplingConfig(), problem_seed: int = 0,
    llm: Any = None, progress: Progress = None, batch_requests: int = 16,
) -> SampleStore:
    """Draws the samples a run is missing for one model label and stores them batch by batch
    (``batch_requests`` vLLM requests of ``sampling.chunk`` samples per stored shard)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if batch_requests < 1:
        raise ValueError(f"batch_requests must be at least 1, got {batch_requests}")
    label = check_label(label or Path(model).name)
    from passkcore.models import resolve_model

    resolve_model(model)  # an unknown model fails here, before anything is written
    chosen = load_problems(problems, limit, seed=problem_seed)
    store = open_run(out, chosen, {"spec": problems, "limit": limit, "seed": problem_seed})
    store.register_model(label, {"model": model, "n": n, **sampling.as_dict()})
    stored: dict[str, set[int]] = {}
    for pid, idx in store.sample_keys(label):
        stored.setdefault(pid, set()).add(idx)
    total = n * len(chosen)
    done = sum(len(v) for v in stored.values())
    if done >= total:
        return store
    from passkcore.sampling import make_llm, sample

    engine = llm if llm is not None else make_llm(model, seed=sampling.seed)
    state = {"done": done}

    def keep(rows: list[dict[str, Any]]) -> None:
        store.write_samples(rows)
        state["done"] += len(rows)
        if progress:
            progress(state["done"], total)

    if progress:
        progress(done, total)
    sample(engine, chosen, n, sampling, model=label, have=lambda pid: stored.get(pid, set()), on_rows=keep,
           batch_requests=batch_requests)
    return store


def verify_run(
    run: Union[str, Path], *, timeout_s: float = 10.0, memory_mb: int = 1024, workers: Optional[int] = None,
    batch: int = 256, progress: Progress = None,
) -> SampleStore:
    """Verifies every stored sample without a verdict, writing verdict shards batch by batch."""
    from passkcore.verify import verify_rows

    store = SampleStore(run)
    problems = {p.id: p for p in run_problems(store)}
    todo: list[dict[str, Any]] = []
    for model in store.models:
        have = store.verdict_keys(model)
        table = store.samples([model], columns=["model", "problem_id", "sample_index", "response"])
        todo.extend(r for r in table.to_pylist() if (r["problem_id"], r["sample_index"]) not in have)
    total, done = len(todo), 0
    if progress:
        progress(0, total)
    for b in range(0, total, batch):
        rows = todo[b:b + batch]
        verdicts = verify_rows(rows, problems, workers=workers, timeout_s=timeout_s, memory_mb=memory_mb)
        store.write_verdicts([
            {"model": r["model"], "problem_id": r["problem_id"], "sample_index": r["sample_index"],
             "correct": v.passed, "extracted_answer": v.extracted, "verifier": v.verifier, "reason": v.reason}
            for r, v in zip(rows, verdicts)
        ])
        done += len(rows)
        if progress:
            progress(done, total)
    return store


def write_counts(run: Union[str, Path], out: Union[str, Path]) -> pa.Table:
    """``problem_id, model, n, c`` of a verified run, to Parquet (or CSV by extension)."""
    table = SampleStore(run).counts()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    if out.suffix.lower() == ".csv":
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, tmp)
    else:
        import pyarrow.parquet as pq

        pq.write_table(table, tmp)
    tmp.replace(out)
    return table
