"""Resumable pipeline stages over a run directory: sample -> verify -> counts.

Each stage reads what the previous one stored and writes its own shards, skipping keys already
stored, so a stage killed at any point continues where it stopped when run again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional, Union

import pyarrow as pa

from passkcore._atomic import write_atomically, write_text_atomically
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
        write_text_atomically(path, text)
    return store


def run_problems(store: SampleStore) -> list[Problem]:
    """The problems a run was sampled on."""
    path = _problems_file(store.root)
    if not path.is_file():
        raise ValueError(f"{store.root}: problems.jsonl is missing")
    return [Problem(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def open_sampling(
    out: Union[str, Path], *, model: str, problems: str, n: int, label: Optional[str], limit: Optional[int],
    sampling: SamplingConfig, problem_seed: int, batch_requests: int, template: Any = None,
    fields: Optional[dict[str, Any]] = None,
) -> tuple[SampleStore, str, list[Problem], dict[str, set[int]]]:
    """What a sampling stage starts from: the run (created or reopened, the model label registered
    with its settings and prompt template), the label, the problems and the sample indices already
    stored per problem. ``fields`` maps a published benchmark file's fields (``load_problems``). An
    unknown model, template or bad argument fails here, before anything is written."""
    from passkcore.models import resolve_model
    from passkcore.templates import resolve_template

    for name, value in (("n", n), ("batch_requests", batch_requests)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    label = check_label(label or Path(model).name)
    resolve_model(model)
    prompt_template = resolve_template(template)
    chosen = load_problems(problems, limit, seed=problem_seed, fields=fields)
    spec = {"spec": problems, "limit": limit, "seed": problem_seed, **({"fields": fields} if fields else {})}
    store = open_run(out, chosen, spec)
    settings = {"model": model, "n": n, **sampling.as_dict()}
    known = store.manifest["models"].get(label)
    if not (known is not None and "template" not in known and prompt_template.chat):
        settings.update(prompt_template.settings())  # runs made before templates were chat runs
    store.register_model(label, settings)
    stored: dict[str, set[int]] = {}
    for pid, idx in store.sample_keys(label):
        stored.setdefault(pid, set()).add(idx)
    return store, label, chosen, stored


def scored_keys(folder: Path) -> set[tuple[str, str, int]]:
    """(model, problem_id, sample_index) of every score stored in one scorer's folder."""
    from passkcore.scoring import SCORE_SCHEMA
    from passkcore.store import _read_folder

    done = _read_folder(folder, SCORE_SCHEMA)
    return set(zip(done.column("model").to_pylist(), done.column("problem_id").to_pylist(),
                   done.column("sample_index").to_pylist()))


def sample_run(
    out: Union[str, Path], *, model: str, problems: str, n: int, label: Optional[str] = None,
    limit: Optional[int] = None, sampling: SamplingConfig = SamplingConfig(),  # noqa: B008 - frozen
    problem_seed: int = 0,
    llm: Any = None, progress: Progress = None, batch_requests: int = 16, template: Any = None,
    fields: Optional[dict[str, Any]] = None,
) -> SampleStore:
    """Draws the samples a run is missing for one model label and stores them batch by batch
    (``batch_requests`` vLLM requests of ``sampling.chunk`` samples per stored shard). ``template``:
    ``chat`` (default), ``raw``, a built-in prompt or a Jinja file (``passkcore.templates``)."""
    store, label, chosen, stored = open_sampling(out, model=model, problems=problems, n=n, label=label, limit=limit,
                                                 sampling=sampling, problem_seed=problem_seed,
                                                 batch_requests=batch_requests, template=template, fields=fields)
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
           batch_requests=batch_requests, template=template)
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
            {"model": r["model"], "problem_id": r["problem_id"], "sample_index": r["sample_index"], **v.as_row()}
            for r, v in zip(rows, verdicts)
        ])
        done += len(rows)
        if progress:
            progress(done, total)
    return store


def write_counts(run: Union[str, Path], out: Union[str, Path], table: Optional[pa.Table] = None) -> pa.Table:
    """``problem_id, model, n, c`` of a verified run (or ``table``, counts already merged), to Parquet
    (or CSV by extension)."""
    table = SampleStore(run).counts() if table is None else table
    if Path(out).suffix.lower() == ".csv":
        import pyarrow.csv as pcsv

        write_atomically(out, lambda tmp: pcsv.write_csv(table, tmp))
    else:
        import pyarrow.parquet as pq

        write_atomically(out, lambda tmp: pq.write_table(table, tmp))
    return table


def score_run(
    run: Union[str, Path], *, scorer: str = "smollm2-135m", backend: str = "fused",
    temperatures: Sequence[float] = (1.0,), out: Optional[Union[str, Path]] = None, batch_rows: int = 256,
    label: Optional[str] = None, progress: Progress = None,
) -> pa.Table:
    """Scores every stored sample under ``scorer`` at each temperature into RUN/scores/<label>/ shards
    (one backbone pass serves all temperatures; resumable: keys already scored are skipped), then
    returns those scores (also written to ``out``)."""
    from passkcore.importers.tokens import ensure_run_token_ids
    from passkcore.scoring import Scorer
    from passkcore.store import _atomic_write_table

    store = SampleStore(run)
    engine = Scorer(scorer, backend=backend, label=label)
    folders = [store.root / "scores" / check_label(engine.label_for(t)) for t in temperatures]
    have = [scored_keys(folder) for folder in folders]
    samples = store.samples(columns=["model", "problem_id", "sample_index", "prompt_token_ids", "response_token_ids",
                                     "response"])
    keyed = [((r["model"], r["problem_id"], r["sample_index"]), r) for r in samples.to_pylist()]
    todo = [r for key, r in keyed if any(key not in h for h in have)]
    # Imported samples carry text: token ids from the scorer's tokenizer and the model's template.
    todo = ensure_run_token_ids(store, todo, engine.path, engine.label)
    total = sum(len(r["response_token_ids"]) for r in todo)
    state = {"done": 0}

    def tick(tokens: int) -> None:
        state["done"] += tokens
        if progress:
            progress(state["done"], total)

    tick(0)
    for b in range(0, len(todo), batch_rows):
        chunk = todo[b:b + batch_rows]
        for folder, h, table in zip(folders, have, engine.score_at(chunk, list(temperatures), progress=tick)):
            keep = [i for i, r in enumerate(chunk) if (r["model"], r["problem_id"], r["sample_index"]) not in h]
            if keep:
                _atomic_write_table(table.take(keep), folder)
    return collect_scores(folders, out)


def collect_scores(folders: Sequence[Path], out: Optional[Union[str, Path]] = None) -> pa.Table:
    """Every score stored in these scorer folders, also written to ``out`` when given."""
    from passkcore.scoring import SCORE_SCHEMA
    from passkcore.store import _read_folder

    table = pa.concat_tables([_read_folder(folder, SCORE_SCHEMA) for folder in folders])
    if out is not None:
        import pyarrow.parquet as pq

        write_atomically(out, lambda tmp: pq.write_table(table, tmp))
    return table


def run_scores(run: Union[str, Path]) -> pa.Table:
    """Every scorer's scores stored in a run."""
    from passkcore.scoring import SCORE_SCHEMA
    from passkcore.store import _read_folder

    root = SampleStore(run).root / "scores"
    tables = [_read_folder(p, SCORE_SCHEMA) for p in sorted(root.glob("*")) if p.is_dir()]
    return pa.concat_tables(tables) if tables else SCORE_SCHEMA.empty_table()


def ppl_summary(scores: pa.Table) -> list[dict[str, Any]]:
    """Median and quartiles of PPL per (model, scorer), over rows scored ``ok``."""
    import numpy as np

    out = []
    rows = scores.select(["model", "scorer", "ppl", "status"]).to_pylist()
    groups: dict[tuple[str, str], list[Any]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["scorer"]), []).append(r)
    for (model, scorer), items in sorted(groups.items()):
        ppl = np.array([r["ppl"] for r in items if r["status"] == "ok"], dtype=np.float64)
        q = np.quantile(ppl, [0.25, 0.5, 0.75]) if ppl.size else [None, None, None]
        out.append({"model": model, "scorer": scorer, "samples": len(items), "scored": int(ppl.size),
                    "q1": None if q[0] is None else float(q[0]), "median": None if q[1] is None else float(q[1]),
                    "q3": None if q[2] is None else float(q[2])})
    return out
