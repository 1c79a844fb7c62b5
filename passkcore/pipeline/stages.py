"""The stages, each written once: ``plan()`` reads key columns only and returns work items (plain
JSON-able dicts) for what the run lacks; ``run(item)`` does one item into one digest-named shard.
Verify and score items name rows of a sample shard by position, sample items name chunks of
requests, so a plan holds no list of keys (``passkcore.pipeline.planning``: memory flat in run size).

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

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import InitVar, dataclass, field
from typing import Any, Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from passkcore.images import images_digest
from passkcore.pipeline.executors import Item, Report
from passkcore.pipeline.planning import (
    decode_mask,
    encode_mask,
    item_keys,
    key_index,
    missing_rows,
    read_rows,
    row_item,
    stored_indices,
)
from passkcore.pipeline.run import SAMPLE_SCHEMA, VERDICT_SCHEMA, read_shards, shard_name
from passkcore.pipeline.store import SampleStore
from passkcore.pipeline.tokens import ensure_run_token_ids, needs_tokens
from passkcore.problems import Problem
from passkcore.sampling import PlannedRequest, SamplingConfig, iter_requests
from passkcore.scoring import DEFAULT_BACKEND
from passkcore.templates import PromptTemplate, template_from_settings


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
        items: list[Item] = []
        for model in self.store.models:
            index = key_index(self.store, "verdicts", model)
            items.extend(row_item(self.store.root, model, path, rows)
                         for path, rows, _ in missing_rows(self.store, model, [index], self.batch))
        return items

    def run(self, item: Item) -> Report:
        import passkcore.verify as verify  # looked up per call: the verifier is replaceable (and tests replace it)

        table = read_rows(self.store.root, item, ["model", "problem_id", "sample_index", "response"])
        shard = shard_name("verdicts", item["model"], item_keys(table))
        if self.store.has_shard("verdicts", item["model"], shard):
            return {"rows": item["rows"], "resumed": True}
        rows = table.to_pylist()
        verdicts = verify.verify_rows(rows, self.problems, workers=self.workers, **self.options)
        out = pa.Table.from_pylist([
            {"model": r["model"], "problem_id": r["problem_id"], "sample_index": r["sample_index"], **v.as_row()}
            for r, v in zip(rows, verdicts)], schema=VERDICT_SCHEMA)
        self.store.write_shard("verdicts", item["model"], out, shard)
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
    dtype: str = "float32"  # passkcore.scoring.SCORE_DTYPES; a bf16 scorer's default label ends in .bf16

    def __post_init__(self) -> None:
        from passkcore.scoring import DTYPE_SUFFIX, Scorer, score_torch_dtype

        score_torch_dtype(self.dtype)
        self.temperatures = [float(t) for t in self.temperatures]
        probe = Scorer(self.scorer, backend=self.backend, label=self.label)  # checks arguments; loads no weights
        if self.label is None and DTYPE_SUFFIX[self.dtype]:
            probe = Scorer(self.scorer, backend=self.backend, label=probe.label + DTYPE_SUFFIX[self.dtype])
        self.scorer, self.label = str(probe.path), probe.label
        self.labels = [probe.label_for(t) for t in self.temperatures]

    def plan(self) -> list[Item]:
        """Items of rows some temperature lacks; ``need[t]``: the mask of the item's rows that
        temperature ``t`` lacks (None: all of them)."""
        indexes = [key_index(self.store, "scores", label) for label in self.labels]
        items = []
        for model in self.store.models:
            for path, rows, flags in missing_rows(self.store, model, indexes, self.batch):
                item = row_item(self.store.root, model, path, rows)
                item["need"] = [encode_mask(~flags[:, t]) for t in range(len(self.labels))]
                items.append(item)
        return items

    def setup(self) -> None:
        if self.runtime.engine is None:
            from passkcore.scoring import Scorer, score_torch_dtype

            self.runtime.engine = Scorer(self.scorer, backend=self.backend, label=self.label,
                                         dtype=score_torch_dtype(self.dtype))

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
        table = read_rows(self.store.root, item, ["model", "problem_id", "sample_index", "prompt_token_ids",
                                                  "response_token_ids", "response", "image_digest"])
        need = [decode_mask(mask, item["rows"]) for mask in item["need"]]
        shards = [shard_name(f"scores/{label}", item["model"], item_keys(table, rows)) if rows.any() else None
                  for label, rows in zip(self.labels, need)]
        needed = [t for t, shard in enumerate(shards)
                  if shard is not None and not self.store.has_shard("scores", self.labels[t], shard)]
        if not needed:
            return {"rows": item["rows"], "resumed": True}
        self.setup()
        rows = table.to_pylist()
        del table
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
        for t, scored in zip(needed, tables):
            keep = pa.array(np.flatnonzero(need[t]), pa.int64())
            self.store.write_shard("scores", self.labels[t], scored.take(keep), str(shards[t]))
        del rows
        return {"rows": item["rows"], "tokens": tokens}


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

    def check_images(self) -> None:
        """Stored samples drawn on other images than the run's problems have now: a ValueError naming
        the problem and both digests (reads the problem and digest columns, one shard at a time)."""
        if not any(p.images for p in self.problems.values()):
            return
        digests: dict[str, Optional[str]] = {}  # each problem's images hashed once, not once a shard
        for path in self.store.files("samples", self.label):
            table = read_shards([path], SAMPLE_SCHEMA, ["problem_id", "image_digest"])
            pairs = table.group_by(["problem_id", "image_digest"], use_threads=False).aggregate([])
            for pid, digest in zip(pairs.column("problem_id").to_pylist(), pairs.column("image_digest").to_pylist()):
                problem = self.problems.get(pid)
                if problem is not None and pid not in digests:
                    digests[pid] = images_digest(problem.images)
                now = digests.get(pid)
                if problem is not None and digest != now:
                    raise ValueError(f"{self.root}: samples of problem {pid!r} ({self.label}) were drawn on images "
                                     f"with digest {digest}, the run's images now have {now}; use another --out")

    def plan(self) -> list[Item]:
        """Items of ``batch_requests`` requests for the chunks the label lacks. A request's ``wanted``
        lists the indices it must store when a resumed chunk has some already (None: the whole chunk),
        so a fresh plan holds ~12 bytes a sample (a 4-key dict per chunk of 16), not a list of keys."""
        self.check_images()
        index = key_index(self.store, "samples", self.label)
        complete = set()
        for pid in self.problems:
            if stored_indices(index, pid, self.n).size >= self.n:
                complete.add(pid)
        todo = (p for p in self.problems.values() if p.id not in complete)
        requests = iter_requests(todo, self.n, self.sampling, lambda pid: stored_indices(index, pid, self.n).tolist())
        items: list[Item] = []
        batch: list[PlannedRequest] = []
        for request in requests:
            batch.append(request)
            if len(batch) == self.batch_requests:
                items.append(self.item(batch))
                batch = []
        if batch:
            items.append(self.item(batch))
        return items

    def item(self, batch: Sequence[PlannedRequest]) -> Item:
        keys = [(r.problem.id, i) for r in batch for i in sorted(r.wanted)]
        return {"shard": shard_name("samples", self.label, keys), "rows": len(keys),
                "requests": [{"problem_id": r.problem.id, "chunk_index": r.chunk_index, "size": r.size,
                              "wanted": None if len(r.wanted) == r.size else sorted(r.wanted)} for r in batch]}

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
        chunk = self.sampling.chunk
        return [PlannedRequest(self.problems[r["problem_id"]], r["chunk_index"], r["size"],
                               frozenset(range(r["chunk_index"] * chunk, r["chunk_index"] * chunk + r["size"])
                                         if r["wanted"] is None else r["wanted"]))
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

