"""``SampleStore``: a run directory opened once and handed to the stages and the report.

Rows in and tables out, keyed by (model, problem_id, sample_index); the layout and schemas are
``passkcore.pipeline.run``'s. A write checks its keys against a ``KeyIndex`` (8 bytes a stored key,
kept up to date by reading only the key columns of shards it has not seen), never by reading the
stored rows again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from passkcore.images import keep_images, resolve_images, run_image_name
from passkcore.numbers.counts import COUNTS_SCHEMA
from passkcore.pipeline.run import (
    KINDS,
    READABLE_VERSIONS,
    SAMPLE_SCHEMA,
    SCHEMA_VERSION,
    SCORE_SCHEMA,
    VERDICT_SCHEMA,
    KeyIndex,
    check_label,
    folder,
    labels,
    manifest_path,
    problems_path,
    problems_text,
    read_shards,
    shard_files,
    shard_name,
    write_manifest,
    write_shard,
)
from passkcore.problems import Problem
from passkcore.verify.verdict import VERDICT_COLUMNS

_KEY = ["problem_id", "sample_index"]


class SampleStore:
    """A run directory of sample, verdict and score shards."""

    def __init__(self, root: Union[str, Path]) -> None:
        self.root = Path(root)
        path = manifest_path(self.root)
        if not path.is_file():
            raise ValueError(f"{self.root} is not a passkcore run (no manifest.json); create it with `passk sample`")
        self.manifest = json.loads(path.read_text())
        version = self.manifest.get("schema_version")
        if version not in READABLE_VERSIONS:
            raise ValueError(f"{self.root}: written with store schema version {version}; this passkcore reads "
                             f"versions {READABLE_VERSIONS}")
        self._indexes: dict[tuple[str, str], KeyIndex] = {}

    @classmethod
    def create(cls, root: Union[str, Path], problems: Mapping[str, Any]) -> SampleStore:
        """Opens ``root``, creating it with a manifest; an existing run must have the same problem set."""
        root = Path(root)
        if manifest_path(root).is_file():
            store = cls(root)
            if store.manifest.get("problems") != problems:
                raise ValueError(f"{root} already holds a run over other problems "
                                 f"({store.manifest.get('problems')}); use another --out")
            return store
        write_manifest(root, {"schema_version": SCHEMA_VERSION, "problems": problems, "models": {}})
        return cls(root)

    @staticmethod
    def problem_set(problems: Sequence[Problem], spec: Mapping[str, Any]) -> dict[str, Any]:
        """The manifest's ``problems`` entry of a run over these problems."""
        digest = hashlib.sha256(problems_text(problems).encode()).hexdigest()
        return {**spec, "count": len(problems), "sha256": digest}

    @classmethod
    def open_run(cls, root: Union[str, Path], problems: Sequence[Problem], spec: Mapping[str, Any]) -> SampleStore:
        """Creates (or reopens) a run over exactly these problems, kept in RUN/problems.jsonl (their
        images copied into RUN/images, named by digest: ``passkcore.images``)."""
        named = keep_images(Path(root), problems, write=False)
        check_same_images(Path(root), named)
        text = problems_text(named)
        store = cls.create(root, cls.problem_set(named, spec))
        keep_images(store.root, problems)
        path = problems_path(store.root)
        if not path.is_file():
            from passkcore._atomic import write_text_atomically

            write_text_atomically(path, text)
        return store

    def problems(self) -> list[Problem]:
        """The problems a run was sampled on."""
        path = problems_path(self.root)
        if not path.is_file():
            raise ValueError(f"{self.root}: problems.jsonl is missing")
        problems = [Problem(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
        return resolve_images(self.root, problems)

    def register_model(self, model: str, settings: Mapping[str, Any]) -> None:
        """Records a model label's sampling settings; the same label must keep the same settings."""
        check_label(model)
        known = self.manifest["models"].get(model)
        if known is not None and known != dict(settings):
            diff = sorted(k for k in set(known) | set(settings) if known.get(k) != settings.get(k))
            raise ValueError(f"model {model!r} was sampled with other settings ({', '.join(diff)} differ); "
                             "use another label or another run directory")
        self.manifest["models"][model] = dict(settings)
        write_manifest(self.root, self.manifest)

    def record_scorer(self, label: str, settings: Mapping[str, Any]) -> None:
        """Records a scorer label's settings (``dtype``) under ``scorers``; a label keeps its settings.
        A label scored before settings were recorded was scored in float32."""
        known = self.manifest.get("scorers", {}).get(label)
        if known is None and label in self.scorers():
            known = {"dtype": "float32"}
        if known is not None and known != dict(settings):
            diff = sorted(k for k in set(known) | set(settings) if known.get(k) != settings.get(k))
            raise ValueError(f"scorer {label!r} was scored with other settings ({', '.join(diff)}: "
                             f"{known}); score under another label or in the same dtype")
        if self.manifest.get("scorers", {}).get(label) != dict(settings):
            self.manifest.setdefault("scorers", {})[label] = dict(settings)
            write_manifest(self.root, self.manifest)

    def record_verifier(self, settings: Mapping[str, Any]) -> None:
        """Records what the code sandbox showed its programs (``verify``: the allowlisted packages);
        settings a run was verified with before, where they differ, are kept in ``verify_earlier``."""
        known = self.manifest.get("verify")
        if known == dict(settings):
            return
        if known is not None:
            self.manifest.setdefault("verify_earlier", []).append(known)
        self.manifest["verify"] = dict(settings)
        write_manifest(self.root, self.manifest)

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys([*self.manifest["models"], *labels(self.root, "samples")]))

    def scorers(self) -> list[str]:
        return labels(self.root, "scores")

    def folder(self, kind: str, label: str) -> Path:
        return folder(self.root, kind, label)

    def files(self, kind: str, label: str) -> list[Path]:
        return shard_files(self.folder(kind, label))

    def index(self, kind: str, label: str) -> KeyIndex:
        """The keys stored in one folder, refreshed with shards written since the last call."""
        key = (kind, check_label(label))
        if key not in self._indexes:
            self._indexes[key] = KeyIndex(self.folder(kind, label), kind)
        return self._indexes[key].refresh()

    # -- writing ------------------------------------------------------------------------------------
    def write_samples(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Writes rows whose keys are not stored yet, one shard per model; returns how many."""
        return self._write(rows, "samples")

    def write_verdicts(self, rows: Sequence[Mapping[str, Any]]) -> int:
        return self._write(rows, "verdicts")

    def _write(self, rows: Sequence[Mapping[str, Any]], kind: str) -> int:
        schema = KINDS[kind]
        by_model: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_model.setdefault(check_label(str(row["model"])), []).append({n: row.get(n) for n in schema.names})
        return sum(self.write_table(kind, model, pa.Table.from_pylist(group, schema=schema))
                   for model, group in by_model.items())

    def write_table(self, kind: str, label: str, table: pa.Table, name: Optional[str] = None) -> int:
        """Writes the rows of ``table`` whose keys are not stored yet (the first of equal keys) as one
        shard (named ``name``, default a digest of its keys); returns how many rows that was."""
        index = self.index(kind, label)
        codes = index.codes(table)
        _, first = np.unique(codes, return_index=True)
        keep = np.zeros(codes.size, bool)
        keep[first] = True
        keep &= ~index.contains(codes)
        if not keep.any():
            return 0
        fresh = table.filter(pa.array(keep)) if not keep.all() else table
        key_cols = list(index.columns)
        keys = zip(*(fresh.column(c).to_pylist() for c in key_cols))
        path = self.write_shard(kind, label, fresh, name or shard_name(kind, label, keys))
        index.add(codes[keep])
        index.seen.add(path.name)
        return fresh.num_rows

    def write_shard(self, kind: str, label: str, table: pa.Table, name: str) -> Path:
        """The one shard writer (every stage, the importers, ``write_table``): ``table`` cast to the kind's
        schema as RUN/<kind>/<label>/<name>.parquet, flushed under a temporary name and renamed; a shard
        of that name already in place is kept (a retried item adds nothing). Keys are not checked:
        callers name the shard by a digest of keys they planned as missing."""
        return write_shard(table.cast(KINDS[kind]), self.folder(kind, label), name)

    def has_shard(self, kind: str, label: str, name: str) -> bool:
        """Whether RUN/<kind>/<label>/<name>.parquet is complete (an item that finds it is done)."""
        return (self.folder(kind, label) / f"{name}.parquet").exists()

    # -- reading ------------------------------------------------------------------------------------
    def _key_set(self, kind: str, model: str) -> set[tuple[str, int]]:
        table = read_shards(self.files(kind, model), KINDS[kind], _KEY)
        return set(zip(table.column("problem_id").to_pylist(), table.column("sample_index").to_pylist()))

    def sample_keys(self, model: str) -> set[tuple[str, int]]:
        return self._key_set("samples", model)

    def verdict_keys(self, model: str) -> set[tuple[str, int]]:
        return self._key_set("verdicts", model)

    def read(self, kind: str, label: str, columns: Optional[Sequence[str]] = None) -> pa.Table:
        return read_shards(self.files(kind, label), KINDS[kind], columns)

    def value_counts(self, kind: str, labels: Iterable[str], column: str) -> dict[Any, int]:
        """How often each value of one column occurs in these folders, read one shard at a time (a
        summary line after a stage costs no memory per stored row)."""
        counted: dict[Any, int] = {}
        for label in labels:
            for file in self.files(kind, label):
                for row in pc.value_counts(read_shards([file], KINDS[kind], [column]).column(column)).to_pylist():
                    counted[row["values"]] = counted.get(row["values"], 0) + row["counts"]
        return counted

    def samples(self, models: Optional[Iterable[str]] = None, columns: Optional[Sequence[str]] = None) -> pa.Table:
        """Sample rows with their verdicts filled in (``correct`` null until verified), by model, then key.

        ``columns`` picks a subset of the sample schema plus the verdict columns (``reason``, ``detail``,
        per-test results, ``answer_key``, ``extract_policy``); only those are read."""
        extra = [c for c in VERDICT_COLUMNS if c not in SAMPLE_SCHEMA.names]
        names = list(columns) if columns is not None else SAMPLE_SCHEMA.names + extra
        verdict_cols = [c for c in names if c in VERDICT_COLUMNS]
        sample_cols = list(dict.fromkeys([*_KEY, *(c for c in names if c not in verdict_cols)]))
        tables = [self._model_samples(check_label(m), sample_cols, verdict_cols).select(names)
                  for m in (models or self.models)]
        if tables:
            return pa.concat_tables(tables)
        schema = SAMPLE_SCHEMA
        for f in VERDICT_SCHEMA:
            if f.name in extra:
                schema = schema.append(f)
        return schema.empty_table().select(names)

    def _model_samples(self, model: str, sample_cols: list[str], verdict_cols: list[str]) -> pa.Table:
        s = self.read("samples", model, sample_cols)
        if verdict_cols:
            v = self.read("verdicts", model, [*_KEY, *verdict_cols])
            # Arrow joins cannot carry list columns: join the keys with a row number, then align.
            keys = s.select(_KEY).append_column("__row", pa.array(np.arange(s.num_rows, dtype=np.int64)))
            joined = keys.join(v, keys=_KEY, join_type="left outer").sort_by("__row")
            for col in verdict_cols:
                s = s.append_column(VERDICT_SCHEMA.field(col), joined.column(col))
        return s.sort_by([("problem_id", "ascending"), ("sample_index", "ascending")])

    def counts(self, models: Optional[Iterable[str]] = None) -> pa.Table:
        """``problem_id, model, n, c`` per problem and model; every sample must be verified. An Arrow
        join and group-by over key and verdict columns only."""
        parts = []
        for model in models or self.models:
            s = self.read("samples", model, ["model", *_KEY])
            v = self.read("verdicts", model, [*_KEY, "correct"])
            parts.append(s.join(v, keys=_KEY, join_type="left outer", use_threads=True))
        table = pa.concat_tables(parts) if parts else None
        if table is None or table.num_rows == 0:
            raise ValueError(f"{self.root}: no samples stored")
        unverified = pc.sum(pc.is_null(table.column("correct"))).as_py() or 0
        if unverified:
            raise ValueError(f"{self.root}: {unverified} of {table.num_rows} samples are not verified yet; "
                             "run `passk verify` first")
        grouped = table.group_by(["problem_id", "model"], use_threads=False).aggregate(
            [("sample_index", "count"), ("correct", "sum")])
        out = pa.table({
            "problem_id": grouped.column("problem_id"),
            "model": grouped.column("model"),
            "n": pc.cast(grouped.column("sample_index_count"), pa.int64()),
            "c": pc.cast(grouped.column("correct_sum"), pa.int64()),
        }, schema=COUNTS_SCHEMA)
        return out.sort_by([("model", "ascending"), ("problem_id", "ascending")])

    def scores(self, scorers: Optional[Iterable[str]] = None, columns: Optional[Sequence[str]] = None) -> pa.Table:
        """Every score stored under these scorer labels (default: all)."""
        tables = [self.read("scores", label, columns) for label in (scorers if scorers is not None else self.scorers())]
        if tables:
            return pa.concat_tables(tables)
        return SCORE_SCHEMA.empty_table().select(list(columns) if columns else SCORE_SCHEMA.names)


def check_same_images(root: Path, problems: Sequence[Problem]) -> None:
    """A run reopened over problems whose images changed since it was sampled: a ValueError naming the
    problem, the image and both digests (the problem-set digest would differ too, less helpfully)."""
    path = problems_path(root)
    if not path.is_file():
        return
    stored = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            stored[str(row["id"])] = row.get("images") or []
    for problem in problems:
        before, now = stored.get(problem.id), problem.images or []
        if before is None or before == now:
            continue
        for k in range(max(len(before), len(now))):
            old = run_image_name(before[k]) if k < len(before) else None
            new = run_image_name(now[k]) if k < len(now) else None
            if old != new:
                raise ValueError(f"{root}: the images of problem {problem.id!r} changed since it was sampled "
                                 f"(field 'images'[{k}]: sha256 {old} stored, {new} now); use another --out, "
                                 "or restore the images to resume")
