"""What an audit looks at: the correct samples of each model's hardest solved problems.

A problem is *solved* by a model when any of its samples is correct (c > 0); the hardest are those
with the lowest c/n (ties: fewer correct samples, then the problem id). Of each such problem's correct
samples, up to ``per_problem`` are chosen at random with a generator seeded by (seed, model, problem),
so one model's choice does not move when another model is added. The queue runs hardest first across
models (c/n, then model, problem and sample index): the export file, the review page and the judge
take it in that order. ``sample_details`` and ``sample_ppl`` read what each queued sample shows, only
for the queued problems.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from passkcore.pipeline.run import KINDS, check_label, read_shards
from passkcore.pipeline.store import SampleStore

DEFAULT_HARDEST = 20
DEFAULT_PER_PROBLEM = 4


@dataclass(frozen=True)
class QueueItem:
    """One correct sample to audit, with its problem's counts."""

    model: str
    problem_id: str
    sample_index: int
    n: int
    c: int

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.model, self.problem_id, self.sample_index)


def check_positive(value: int, flag: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{flag}: must be a positive integer, got {value!r}")
    return value


def hardest_problems(counts: pa.Table, model: str, hardest: int) -> list[tuple[str, int, int]]:
    """``(problem_id, n, c)`` of ``model``'s ``hardest`` hardest solved problems, hardest first."""
    rows = counts.filter(pc.and_(pc.equal(counts.column("model"), model), pc.greater(counts.column("c"), 0)))
    found = list(zip(rows.column("problem_id").to_pylist(), rows.column("n").to_pylist(), rows.column("c").to_pylist()))
    found.sort(key=lambda r: (r[2] / r[1], r[2], r[0]))
    return found[:hardest]


def seeded_choice(indices: Sequence[int], m: int, seed: int, model: str, problem_id: str) -> list[int]:
    """Up to ``m`` of ``indices``, drawn by a generator seeded by (seed, model, problem), ascending."""
    if len(indices) <= m:
        return sorted(indices)
    digest = hashlib.sha256(f"{seed}\x1f{model}\x1f{problem_id}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    picked = rng.choice(np.asarray(sorted(indices), np.int64), size=m, replace=False)
    return sorted(int(i) for i in picked)


def audit_queue(store: SampleStore, *, hardest: int = DEFAULT_HARDEST, per_problem: int = DEFAULT_PER_PROBLEM,
                models: Optional[Sequence[str]] = None, seed: int = 0) -> list[QueueItem]:
    """The queue, hardest first: up to ``per_problem`` correct samples of each of ``hardest`` problems
    per model (``models``: default every model of the run)."""
    check_positive(hardest, "--hardest")
    check_positive(per_problem, "--per-problem")
    chosen = list(models) if models else store.models
    for m in chosen:
        if check_label(m) not in store.models:
            raise ValueError(f"--model: {m!r} is not a model of {store.root} ({', '.join(store.models)})")
    counts = store.counts(chosen)
    items: list[tuple[float, int, QueueItem]] = []
    for order, model in enumerate(chosen):
        problems = hardest_problems(counts, model, hardest)
        if not problems:
            continue
        table = store.samples(models=[model], columns=["problem_id", "sample_index", "correct"])
        ids = pa.array([p for p, _, _ in problems], pa.string())
        table = table.filter(pc.and_(pc.is_in(table.column("problem_id"), value_set=ids),
                                     pc.fill_null(table.column("correct"), False)))
        correct: dict[str, list[int]] = {}
        for pid, idx in zip(table.column("problem_id").to_pylist(), table.column("sample_index").to_pylist()):
            correct.setdefault(pid, []).append(int(idx))
        for pid, n, c in problems:
            for idx in seeded_choice(correct.get(pid, []), per_problem, seed, model, pid):
                items.append((c / n, order, QueueItem(model, pid, idx, int(n), int(c))))
    items.sort(key=lambda t: (t[0], t[1], t[2].problem_id, t[2].sample_index))
    return [item for _, _, item in items]


def hardest_correct(store: SampleStore, model: str, hardest: int = DEFAULT_HARDEST) -> tuple[int, set[tuple[str, int]]]:
    """How many correct samples ``model``'s ``hardest`` hardest solved problems hold, and their keys
    (problem_id, sample_index): the denominator of the report's audited share."""
    problems = hardest_problems(store.counts([model]), model, hardest)
    if not problems:
        return 0, set()
    table = store.samples(models=[model], columns=["problem_id", "sample_index", "correct"])
    ids = pa.array([p for p, _, _ in problems], pa.string())
    table = table.filter(pc.and_(pc.is_in(table.column("problem_id"), value_set=ids),
                                 pc.fill_null(table.column("correct"), False)))
    keys = set(zip(table.column("problem_id").to_pylist(), (int(i) for i in table.column("sample_index").to_pylist())))
    return len(keys), keys


def problems_of(store: SampleStore) -> list[Any]:
    try:
        return store.problems()
    except ValueError:  # a run without problems.jsonl: the page shows the samples alone
        return []


def rows_of(store: SampleStore, kind: str, model: str, columns: Sequence[str],
            problem_ids: set[str]) -> list[dict[str, Any]]:
    """One model's sample or verdict rows of these problems, only ``columns`` (and the key): the
    filter is applied while reading, so a run's other responses are never loaded."""
    ids = pa.array(sorted(problem_ids), pa.string())
    table = read_shards(store.files(kind, model), KINDS[kind], ["problem_id", "sample_index", *columns],
                        filter=pc.field("problem_id").isin(ids))
    return table.to_pylist()


def sample_details(store: SampleStore, queue: Sequence[QueueItem]) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Response, verdict reason and extracted answer of each queued sample (one filtered read of its
    model's samples and verdicts)."""
    out: dict[tuple[str, str, int], dict[str, Any]] = {}
    for model in dict.fromkeys(item.model for item in queue):
        wanted = {item.key for item in queue if item.model == model}
        ids = {k[1] for k in wanted}
        for row in rows_of(store, "samples", model, ["response"], ids):
            key = (model, row["problem_id"], int(row["sample_index"]))
            if key in wanted:
                out[key] = {"response": row["response"], "reason": None, "extracted_answer": None}
        for row in rows_of(store, "verdicts", model, ["reason", "extracted_answer"], ids):
            key = (model, row["problem_id"], int(row["sample_index"]))
            if key in out:
                out[key].update(reason=row["reason"], extracted_answer=row["extracted_answer"])
    return out


def sample_ppl(store: SampleStore, keys: set[tuple[str, str, int]]) -> dict[tuple[str, str, int], list[dict[str, Any]]]:
    """Each queued sample's PPL under every scorer that scored it ok."""
    out: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    scores = store.scores(columns=["model", "scorer", "problem_id", "sample_index", "ppl", "status"])
    if scores.num_rows == 0 or not keys:
        return out
    ids = pa.array(sorted({k[1] for k in keys}), pa.string())
    for row in scores.filter(pc.is_in(scores.column("problem_id"), value_set=ids)).to_pylist():
        key = (row["model"], row["problem_id"], int(row["sample_index"]))
        if key in keys and row["status"] == "ok":
            out.setdefault(key, []).append({"scorer": row["scorer"], "ppl": row["ppl"]})
    return out
