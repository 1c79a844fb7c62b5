"""The stages, each written once: ``plan()`` reads key columns only and returns work items (plain
JSON-able dicts) for what the run lacks; ``run(item)`` does one item into one digest-named shard.

Items of one plan cover disjoint keys, and an item writes exactly the keys it was planned for, into
a shard whose name is a digest of those keys (temporary name, then rename; a shard in place is never
rewritten). So a stage killed at any point, by either executor, reruns to every key exactly once:
a finished item's keys are no longer missing, and an item retried by Ray finds its shard.

Each stage is a ``passkcore.pipeline.executors.Stage``: its dataclass fields are plain settings (what is
pickled to Ray workers), and everything built where the items run (the open store, the problems, the
engine: vLLM, a ``Scorer``; the prompt template, the tokenizer) lives apart in its ``Runtime``, which
is never pickled. Every shard goes through ``SampleStore.write_shard``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from passkcore.images import images_digest
from passkcore.pipeline.executors import Item, Report
from passkcore.pipeline.run import SAMPLE_SCHEMA, VERDICT_SCHEMA, read_shards, shard_name
from passkcore.pipeline.store import SampleStore
from passkcore.pipeline.tokens import ensure_run_token_ids, needs_tokens
from passkcore.problems import Problem
from passkcore.sampling import PlannedRequest, SamplingConfig, plan_requests
from passkcore.scoring import DEFAULT_BACKEND
from passkcore.templates import PromptTemplate, template_from_settings


def _missing_groups(store: SampleStore, model: str, done: Callable[[pa.Table], np.ndarray],
                    batch: int) -> Iterator[tuple[str, list[list[Any]], np.ndarray]]:
    """(sample shard, keys, done-mask rows) of ``model``'s samples for which ``done`` is not all true,
    in groups of at most ``batch`` keys of one shard; reads key columns only."""
    table = read_shards(store.files("samples", model), SAMPLE_SCHEMA,
                        ["model", "problem_id", "sample_index", "__filename"])
    if table.num_rows == 0:
        return
    flags = done(table)  # (rows, stages) bool
    todo = ~flags.all(axis=1)
    if not todo.any():
        return
    rows = np.flatnonzero(todo)
    table = table.take(pa.array(rows))
    flags = flags[rows]
    files = table.column("__filename").dictionary_encode().combine_chunks()
    order = np.argsort(files.indices.to_numpy(zero_copy_only=False), kind="stable")  # one group per shard
    pids = table.column("problem_id").take(pa.array(order)).to_pylist()
    idx = table.column("sample_index").take(pa.array(order)).to_pylist()
    names = files.take(pa.array(order)).to_pylist()
    flags = flags[order]
    start = 0
    for end in range(1, len(names) + 1):
        if end == len(names) or names[end] != names[start]:
            for a in range(start, end, batch):
                b = min(end, a + batch)
                yield names[start], [[p, i] for p, i in zip(pids[a:b], idx[a:b])], flags[a:b]
            start = end


def read_item_rows(root: Path, item: Item, columns: Sequence[str]) -> list[dict[str, Any]]:
    """The rows of one item (its keys, in the item's order) from its sample shard, these columns only.
    A filter on the keys keeps a large shard (``write_samples`` of many rows) from being read whole."""
    pids = sorted({str(k[0]) for k in item["keys"]})
    idx = sorted({int(k[1]) for k in item["keys"]})
    wanted = pc.field("problem_id").isin(pids) & pc.field("sample_index").isin(idx)
    names = list(dict.fromkeys(["problem_id", "sample_index", *columns]))
    table = ds.dataset(root / item["file"], format="parquet").to_table(columns=names, filter=wanted)
    position = {k: i for i, k in enumerate(zip(table.column("problem_id").to_pylist(),
                                                 table.column("sample_index").to_pylist()))}
    take = [position[(str(p), int(i))] for p, i in item["keys"]]
    return table.take(pa.array(take, pa.int64())).select(list(columns)).to_pylist()


def _relative(root: Path, file: str) -> str:
    return str(Path(file).resolve().relative_to(root.resolve()))


@dataclass
class Runtime:
    """What a stage builds in the process that runs its items; never pickled (Ray workers build their own)."""

    store: Optional[SampleStore] = None
    problems: Optional[dict[str, Problem]] = None
    engine: Any = None  # vLLM's LLM (sampling) or a Scorer (scoring)
    owns_engine: bool = False  # started here (closed by the stage), not handed in by the caller
    template: Optional[PromptTemplate] = None
    tokenizer: Any = None
    prompts: dict[str, Any] = field(default_factory=dict)  # rendered prompts, by problem id


@dataclass
class StageBase:
    """Settings in the fields, runtime state in ``runtime``; the store and the problems, opened once per
    process; items one by one unless a stage streams them."""

    root: str
    runtime: Runtime = field(default_factory=Runtime, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "runtime": Runtime()}

    @property
    def store(self) -> SampleStore:
        if self.runtime.store is None:
            self.runtime.store = SampleStore(self.root)
        return self.runtime.store

    def attach(self, store: SampleStore) -> StageBase:
        """Works on this open store (the caller's) instead of opening the run again."""
        self.runtime.store = store
        return self

    @property
    def problems(self) -> dict[str, Problem]:
        if self.runtime.problems is None:
            self.runtime.problems = {p.id: p for p in self.store.problems()}
        return self.runtime.problems

    @property
    def gpus_per_replica(self) -> int:
        return 1

    def setup(self) -> None:
        """Loads the engine; nothing to load by default."""

    def close(self) -> None:
        """Shuts down what ``setup`` started; nothing by default."""

    def run(self, item: Item) -> Report:
        raise NotImplementedError

    def run_many(self, items: Sequence[Item]) -> Iterator[Report]:
        for item in items:
            yield self.run(item)


# -- verify -----------------------------------------------------------------------------------------
@dataclass
class VerifyStage(StageBase):
    """Verdicts for every stored sample without one. ``options`` go to ``verify_rows`` as they are
    (``timeout_s``, ``memory_mb``, and whatever else it takes); an exception from it stops the stage
    and stores nothing for that item."""

    root: str
    options: dict[str, Any] = field(default_factory=dict)
    workers: Optional[int] = None
    batch: int = 256
    name: str = "verify"
    pool: str = "tasks"

    def plan(self) -> list[Item]:
        items = []
        for model in self.store.models:
            index = self.store.index("verdicts", model)

            def done(table: pa.Table, index: Any = index) -> np.ndarray:
                return index.contains(index.codes(table))[:, None]

            for file, keys, _ in _missing_groups(self.store, model, done, self.batch):
                items.append({"model": model, "file": _relative(self.store.root, file), "keys": keys,
                              "shard": shard_name("verdicts", model, keys)})
        return items

    def run(self, item: Item) -> Report:
        import passkcore.verify as verify  # looked up per call: the verifier is replaceable (and tests replace it)

        if self.store.has_shard("verdicts", item["model"], item["shard"]):
            return {"rows": len(item["keys"]), "resumed": True}
        rows = read_item_rows(self.store.root, item, ["model", "problem_id", "sample_index", "response"])
        verdicts = verify.verify_rows(rows, self.problems, workers=self.workers, **self.options)
        table = pa.Table.from_pylist([
            {"model": r["model"], "problem_id": r["problem_id"], "sample_index": r["sample_index"], **v.as_row()}
            for r, v in zip(rows, verdicts)], schema=VERDICT_SCHEMA)
        self.store.write_shard("verdicts", item["model"], table, item["shard"])
        return {"rows": len(rows), "correct": sum(v.passed for v in verdicts)}


# -- score ------------------------------------------------------------------------------------------
@dataclass
class ScoreStage(StageBase):
    """Scores every stored sample not yet scored under ``scorer`` at each temperature (one backbone
    pass serves all temperatures; one score folder per temperature's label)."""

    root: str
    scorer: str = "smollm2-135m"
    backend: str = DEFAULT_BACKEND
    label: Optional[str] = None
    temperatures: Sequence[float] = (1.0,)
    batch: int = 256
    name: str = "score"
    pool: str = "actors"

    def __post_init__(self) -> None:
        from passkcore.scoring import Scorer

        self.temperatures = [float(t) for t in self.temperatures]
        probe = Scorer(self.scorer, backend=self.backend, label=self.label)  # checks arguments; loads no weights
        self.scorer, self.label = str(probe.path), probe.label
        self.labels = [probe.label_for(t) for t in self.temperatures]

    def plan(self) -> list[Item]:
        indexes = [self.store.index("scores", label) for label in self.labels]

        def done(table: pa.Table) -> np.ndarray:
            return np.stack([ix.contains(ix.codes(table)) for ix in indexes], axis=1)

        items = []
        for model in self.store.models:
            for file, keys, flags in _missing_groups(self.store, model, done, self.batch):
                need = [[k for k, f in zip(keys, flags[:, t]) if not f] for t in range(len(self.labels))]
                items.append({"model": model, "file": _relative(self.store.root, file), "keys": keys,
                              "need": need, "shards": [shard_name(f"scores/{label}", model, ks) if ks else None
                                                       for label, ks in zip(self.labels, need)]})
        return items

    def setup(self) -> None:
        if self.runtime.engine is None:
            from passkcore.scoring import Scorer

            self.runtime.engine = Scorer(self.scorer, backend=self.backend, label=self.label)

    def close(self) -> None:
        """Shuts down the Scorer's engine, if it started one."""
        engine, self.runtime.engine = self.runtime.engine, None
        if engine is not None:
            engine.close()

    @property
    def tokenizer(self) -> Any:
        if self.runtime.tokenizer is None:
            from passkcore.models import load_tokenizer

            self.runtime.tokenizer = load_tokenizer(self.scorer)
        return self.runtime.tokenizer

    def tokenize(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Imported samples carry text only: token ids from the scorer's tokenizer and the model's
        template, stored under RUN/tokens/<scorer>/ (a digest-named shard per item and model)."""
        return ensure_run_token_ids(self.store, rows, self.scorer, str(self.label), tokenizer=self.tokenizer,
                                    problems=self.problems)

    def run(self, item: Item) -> Report:
        needed = [t for t, shard in enumerate(item["shards"])
                  if shard is not None and not self.store.has_shard("scores", self.labels[t], shard)]
        if not needed:
            return {"rows": len(item["keys"]), "resumed": True}
        self.setup()
        rows = read_item_rows(self.store.root, item, ["model", "problem_id", "sample_index", "prompt_token_ids",
                                                      "response_token_ids", "response", "image_digest"])
        if any(needs_tokens(r) for r in rows):
            rows = self.tokenize(rows)
        digests: dict[str, Optional[str]] = {}
        for row in rows:  # a prompt's images go to the scorer with it (passkcore.visual)
            problem = self.problems.get(str(row["problem_id"]))
            if problem is not None and problem.images:
                if problem.id not in digests:
                    digests[problem.id] = images_digest(problem.images)
                if row.get("image_digest") not in (None, digests[problem.id]):
                    raise ValueError(f"{self.root}: sample {row['problem_id']!r}/{row['sample_index']} was drawn on "
                                     "other images than the run's problem has now")
                row["images"] = problem.images
        tokens = sum(len(r["response_token_ids"]) for r in rows)
        tables = self.runtime.engine.score_at(rows, [self.temperatures[t] for t in needed])
        for t, table in zip(needed, tables):
            want = {(str(p), int(i)) for p, i in item["need"][t]}
            keep = [j for j, r in enumerate(rows) if (r["problem_id"], r["sample_index"]) in want]
            self.store.write_shard("scores", self.labels[t], table.take(pa.array(keep, pa.int64())),
                                   item["shards"][t])
        del rows
        return {"rows": len(item["keys"]), "tokens": tokens}


# -- sample -----------------------------------------------------------------------------------------
@dataclass
class SampleStage(StageBase):
    """The samples a run lacks for one model label: ``batch_requests`` vLLM requests of
    ``sampling.chunk`` samples per item, each request under its own seed (``request_seed``)."""

    root: str
    label: str
    model: str
    n: int
    sampling: SamplingConfig
    batch_requests: int = 16
    tensor_parallel_size: int = 1
    window: int = 256  # requests kept in the engine by the in-process executor
    name: str = "sample"
    pool: str = "actors"
    dtype: Optional[str] = None  # the engine's, resolved by the driver (None: the replica's default)
    llm: InitVar[Any] = None  # an engine already loaded in this process (runtime, not a setting)

    def __post_init__(self, llm: Any) -> None:
        self.runtime.engine = llm

    @property
    def gpus_per_replica(self) -> int:
        return self.tensor_parallel_size

    @property
    def template(self) -> PromptTemplate:
        """The label's prompt template, as the manifest keeps it (read where the items run, so the Ray
        replicas prompt exactly as this process would; runs made before templates: chat)."""
        if self.runtime.template is None:
            self.runtime.template = template_from_settings(self.store.manifest["models"].get(self.label))
        return self.runtime.template

    def stored(self) -> tuple[set[str], dict[str, set[int]]]:
        """(problems with all n samples stored, the stored indices of the others). An Arrow group-by
        finds the complete problems, so a finished run of 10^6 samples puts none of its keys in Python."""
        table = self.store.read("samples", self.label, ["problem_id", "sample_index"])
        idx = table.column("sample_index")
        table = table.filter(pc.and_(pc.greater_equal(idx, 0), pc.less(idx, self.n)))
        # Distinct indices: two samplers writing one label with other item sizes can store a key twice.
        counts = table.group_by("problem_id", use_threads=False).aggregate([("sample_index", "count_distinct")])
        full = pc.greater_equal(counts.column("sample_index_count_distinct"), self.n)
        complete = set(counts.filter(full).column("problem_id").to_pylist())
        partial = table.filter(pc.invert(pc.is_in(table.column("problem_id"), value_set=pa.array(complete, pa.string()))))
        stored: dict[str, set[int]] = {}
        for pid, idx in zip(partial.column("problem_id").to_pylist(), partial.column("sample_index").to_pylist()):
            stored.setdefault(pid, set()).add(idx)
        return complete, stored

    def check_images(self) -> None:
        """Stored samples drawn on other images than the run's problems have now: a ValueError naming
        the problem and both digests (reads the problem and digest columns only)."""
        if not any(p.images for p in self.problems.values()):
            return
        table = self.store.read("samples", self.label, ["problem_id", "image_digest"])
        pairs = table.group_by(["problem_id", "image_digest"], use_threads=False).aggregate([])
        for pid, digest in zip(pairs.column("problem_id").to_pylist(), pairs.column("image_digest").to_pylist()):
            problem = self.problems.get(pid)
            now = images_digest(problem.images) if problem is not None else None
            if problem is not None and digest != now:
                raise ValueError(f"{self.root}: samples of problem {pid!r} ({self.label}) were drawn on images with "
                                 f"digest {digest}, the run's images now have {now}; use another --out")

    def plan(self) -> list[Item]:
        self.check_images()
        complete, stored = self.stored()
        todo = (p for p in self.problems.values() if p.id not in complete)
        plan = plan_requests(todo, self.n, self.sampling, lambda pid: stored.get(pid, set()))
        items = []
        for b in range(0, len(plan), self.batch_requests):
            batch = plan[b:b + self.batch_requests]
            keys = [(r.problem.id, i) for r in batch for i in sorted(r.wanted)]
            items.append({"shard": shard_name("samples", self.label, keys), "keys": [list(k) for k in keys],
                          "requests": [{"problem_id": r.problem.id, "chunk_index": r.chunk_index, "size": r.size,
                                        "wanted": sorted(r.wanted)} for r in batch]})
        return items

    def setup(self) -> None:
        if self.runtime.engine is None:
            from passkcore.sampling import make_llm

            most = max((len(p.images or ()) for p in self.problems.values()), default=0)
            # vLLM admits a fixed number of images per prompt: the most any problem of the run has.
            extra: dict[str, Any] = {"limit_mm_per_prompt": {"image": most}} if most else {}
            self.runtime.engine = make_llm(self.model, seed=self.sampling.seed,
                                           tensor_parallel_size=self.tensor_parallel_size, dtype=self.dtype, **extra)
            self.runtime.owns_engine = True

    def close(self) -> None:
        """Shuts down the engine this stage started (one handed in belongs to its caller)."""
        if self.runtime.owns_engine:
            from passkcore.sampling import shutdown_engine

            engine, self.runtime.engine, self.runtime.owns_engine = self.runtime.engine, None, False
            shutdown_engine(engine)

    def requests(self, item: Item) -> list[PlannedRequest]:
        return [PlannedRequest(self.problems[r["problem_id"]], r["chunk_index"], r["size"], frozenset(r["wanted"]))
                for r in item["requests"]]

    def done(self, item: Item) -> Optional[Report]:
        if not self.store.has_shard("samples", self.label, item["shard"]):
            return None
        path = self.store.folder("samples", self.label) / f"{item['shard']}.parquet"
        return {"rows": pq.read_metadata(path).num_rows, "resumed": True}

    def store_rows(self, item: Item, rows: Sequence[Mapping[str, Any]]) -> Report:
        table = pa.Table.from_pylist([{n: r.get(n) for n in SAMPLE_SCHEMA.names} for r in rows], schema=SAMPLE_SCHEMA)
        self.store.write_shard("samples", self.label, table, item["shard"])
        return {"rows": len(rows), "tokens": sum(len(r["response_token_ids"]) for r in rows)}

    def run_many(self, items: Sequence[Item]) -> Iterator[Report]:
        """The in-process executor's way: every item's requests through one engine step loop, at least
        ``window`` requests queued; each item's shard is written as soon as its requests finished,
        and its rows dropped."""
        from passkcore.sampling import stream_requests

        todo = []
        for item in items:
            report = self.done(item)
            if report is not None:
                yield report
            else:
                todo.append(item)
        if not todo:
            return
        self.setup()
        prompts = self.runtime.prompts
        groups = ((item, self.requests(item)) for item in todo)
        for item, rows in stream_requests(self.runtime.engine, groups, self.sampling, model=self.label, window=self.window,
                                          prompts=prompts, template=self.template):
            yield self.store_rows(item, rows)

    def run(self, item: Item) -> Report:
        from passkcore.sampling import generate_requests

        report = self.done(item)
        if report is not None:
            return report
        self.setup()
        prompts = self.runtime.prompts
        rows = generate_requests(self.runtime.engine, self.requests(item), self.sampling, model=self.label, prompts=prompts,
                                 template=self.template)
        report = self.store_rows(item, rows)
        return report

