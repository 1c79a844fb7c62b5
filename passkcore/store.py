"""The sample store: Parquet shards under a run directory, keyed by (model, problem_id, sample_index).

Layout::

    RUN/manifest.json                  schema version, problem set, per-model sampling settings
    RUN/samples/<model>/<shard>.parquet    sample rows (ARCHITECTURE.md's schema)
    RUN/verdicts/<model>/<shard>.parquet   model, problem_id, sample_index, correct, extracted_answer,
                                           verifier, reason

Every shard is written to a temporary name in the same folder and renamed when complete, so a killed
writer leaves no partial shard that counts; readers skip temporary files, and a key already stored is
never written again (re-running continues where a run stopped, with nothing lost or duplicated).
Verdicts are separate shards, never rewrites of the samples: nothing stored is overwritten.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Optional, Union

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from passkcore._atomic import write_atomically, write_text_atomically
from passkcore.verify.verdict import VERDICT_COLUMNS

SCHEMA_VERSION = 2
# Version 1 shards (before per-test results, answer keys and extraction policies) are still read: the
# columns they lack read as nulls.
READABLE_VERSIONS = (1, 2)
SAMPLE_SCHEMA = pa.schema([
    ("model", pa.string()),
    ("problem_id", pa.string()),
    ("sample_index", pa.int32()),
    ("seed", pa.int64()),
    ("prompt_token_ids", pa.list_(pa.int32())),
    ("response_token_ids", pa.list_(pa.int32())),
    ("response", pa.string()),
    ("finish_reason", pa.string()),
    ("cumulative_logprob", pa.float64()),
    ("correct", pa.bool_()),
    ("extracted_answer", pa.string()),
    ("verifier", pa.string()),
], metadata={b"passkcore.schema_version": str(SCHEMA_VERSION).encode()})
VERDICT_SCHEMA = pa.schema([
    ("model", pa.string()),
    ("problem_id", pa.string()),
    ("sample_index", pa.int32()),
    ("correct", pa.bool_()),
    ("extracted_answer", pa.string()),
    ("verifier", pa.string()),
    ("reason", pa.string()),
    ("detail", pa.string()),
    ("tests_passed", pa.int32()),
    ("tests_total", pa.int32()),
    ("first_failure", pa.string()),
    ("answer_key", pa.string()),
    ("extract_policy", pa.string()),
], metadata={b"passkcore.schema_version": str(SCHEMA_VERSION).encode()})
COUNTS_SCHEMA = pa.schema([("problem_id", pa.string()), ("model", pa.string()), ("n", pa.int64()), ("c", pa.int64())])
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_SHARD_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def check_label(model: str) -> str:
    """Model labels name folders: letters, digits, '.', '_' and '-'."""
    if not isinstance(model, str) or not _LABEL.match(model):
        raise ValueError(f"model label {model!r} must be 1-100 letters, digits, '.', '_' or '-'")
    return model


def _atomic_write_table(table: pa.Table, folder: Path, name: Optional[str] = None) -> Path:
    """A new shard in ``folder``: flushed to disk under a temporary name, then renamed.

    ``name`` (default: a fresh uuid) makes the write idempotent: a shard of that name already in
    place is kept as it is, so a retried task that writes the same shard again adds nothing."""
    if name is not None and not _SHARD_NAME.match(name):
        raise ValueError(f"shard name {name!r} must be 1-100 letters, digits, '_' or '-'")
    target = folder / f"{name or uuid.uuid4().hex}.parquet"
    if name is not None and target.exists():
        return target

    def write(tmp: Path) -> None:
        pq.write_table(table, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())

    return write_atomically(target, write)


def write_shard(table: pa.Table, folder: Path, name: Optional[str] = None) -> Path:
    """A new shard (written whole, then renamed) for writers that have already checked its keys are new
    and unique, such as ``passk import`` (which checks them once instead of per write)."""
    return _atomic_write_table(table, folder, name)


def shard_files(folder: Path) -> list[Path]:
    """The complete shards in ``folder`` (temporary files of unfinished writes are skipped)."""
    return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))


def _read_folder(folder: Path, schema: pa.Schema) -> pa.Table:
    files = shard_files(folder)
    if not files:
        return schema.empty_table()
    tables = []
    for path in files:
        table = pq.read_table(path)
        version = (table.schema.metadata or {}).get(b"passkcore.schema_version", b"?").decode()
        if version not in {str(v) for v in READABLE_VERSIONS}:
            raise ValueError(f"{path}: written with store schema version {version}; this passkcore reads "
                             f"versions {READABLE_VERSIONS}")
        for field in schema:
            if field.name not in table.column_names:
                table = table.append_column(field, pa.nulls(table.num_rows, field.type))
        tables.append(table.select(schema.names).cast(schema))
    return pa.concat_tables(tables)


class SampleStore:
    """A run directory of sample and verdict shards."""

    def __init__(self, root: Union[str, Path]) -> None:
        self.root = Path(root)
        manifest = self.root / "manifest.json"
        if not manifest.is_file():
            raise ValueError(f"{self.root} is not a passkcore run (no manifest.json); create it with `passk sample`")
        self.manifest = json.loads(manifest.read_text())
        version = self.manifest.get("schema_version")
        if version not in READABLE_VERSIONS:
            raise ValueError(f"{self.root}: written with store schema version {version}; this passkcore reads "
                             f"versions {READABLE_VERSIONS}")

    @classmethod
    def create(cls, root: Union[str, Path], problems: Mapping[str, Any]) -> SampleStore:
        """Opens ``root``, creating it with a manifest; an existing run must have the same problem set."""
        root = Path(root)
        path = root / "manifest.json"
        if path.is_file():
            store = cls(root)
            if store.manifest.get("problems") != problems:
                raise ValueError(f"{root} already holds a run over other problems "
                                 f"({store.manifest.get('problems')}); use another --out")
            return store
        manifest = {"schema_version": SCHEMA_VERSION, "problems": problems, "models": {}}
        write_text_atomically(path, json.dumps(manifest, indent=2))
        return cls(root)

    def register_model(self, model: str, settings: Mapping[str, Any]) -> None:
        """Records a model label's sampling settings; the same label must keep the same settings."""
        check_label(model)
        known = self.manifest["models"].get(model)
        if known is not None and known != dict(settings):
            diff = sorted(k for k in set(known) | set(settings) if known.get(k) != settings.get(k))
            raise ValueError(f"model {model!r} was sampled with other settings ({', '.join(diff)} differ); "
                             "use another label or another run directory")
        self.manifest["models"][model] = dict(settings)
        write_text_atomically(self.root / "manifest.json", json.dumps(self.manifest, indent=2))

    @property
    def models(self) -> list[str]:
        on_disk = [p.name for p in sorted((self.root / "samples").glob("*")) if p.is_dir()]
        return list(dict.fromkeys([*self.manifest["models"], *on_disk]))

    # -- writing ------------------------------------------------------------------------------------
    def write_samples(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Writes rows whose keys are not stored yet, one shard per model; returns how many."""
        return self._write(rows, "samples", SAMPLE_SCHEMA, self.sample_keys)

    def write_verdicts(self, rows: Sequence[Mapping[str, Any]]) -> int:
        return self._write(rows, "verdicts", VERDICT_SCHEMA, self.verdict_keys)

    def _write(self, rows: Sequence[Mapping[str, Any]], kind: str, schema: pa.Schema, keys: Any) -> int:
        written = 0
        by_model: dict[str, list[Mapping[str, Any]]] = {}
        for row in rows:
            by_model.setdefault(check_label(str(row["model"])), []).append(row)
        for model, group in by_model.items():
            have = keys(model)
            fresh, seen = [], set()
            for row in group:
                key = (str(row["problem_id"]), int(row["sample_index"]))
                if key in have or key in seen:
                    continue
                seen.add(key)
                fresh.append({name: row.get(name) for name in schema.names})
            if fresh:
                _atomic_write_table(pa.Table.from_pylist(fresh, schema=schema), self.root / kind / model)
                written += len(fresh)
        return written

    # -- reading ------------------------------------------------------------------------------------
    def _keys(self, kind: str, schema: pa.Schema, model: str) -> set[tuple[str, int]]:
        table = _read_folder(self.root / kind / check_label(model), schema)
        return set(zip(table.column("problem_id").to_pylist(), table.column("sample_index").to_pylist()))

    def sample_keys(self, model: str) -> set[tuple[str, int]]:
        return self._keys("samples", SAMPLE_SCHEMA, model)

    def verdict_keys(self, model: str) -> set[tuple[str, int]]:
        return self._keys("verdicts", VERDICT_SCHEMA, model)

    def samples(self, models: Optional[Iterable[str]] = None, columns: Optional[Sequence[str]] = None) -> pa.Table:
        """Sample rows with their verdicts filled in (``correct`` null until verified), by model, then key.

        ``columns`` picks a subset of the sample schema plus the verdict columns (``reason``, ``detail``,
        per-test results, ``answer_key``, ``extract_policy``); token-id lists are heavy."""
        extra = [c for c in VERDICT_COLUMNS if c not in SAMPLE_SCHEMA.names]
        names = list(columns) if columns is not None else SAMPLE_SCHEMA.names + extra
        verdict_cols = list(VERDICT_COLUMNS)
        tables = []
        for model in models or self.models:
            s = _read_folder(self.root / "samples" / check_label(model), SAMPLE_SCHEMA)
            v = _read_folder(self.root / "verdicts" / model, VERDICT_SCHEMA)
            # Arrow joins cannot carry list columns: join the keys with a row number, then align.
            keys = s.select(["problem_id", "sample_index"]).append_column("__row", pa.array(range(s.num_rows), pa.int64()))
            joined = keys.join(v.select(["problem_id", "sample_index", *verdict_cols]),
                               keys=["problem_id", "sample_index"], join_type="left outer").sort_by("__row")
            s = s.drop_columns(["correct", "extracted_answer", "verifier"])
            for col in verdict_cols:
                s = s.append_column(col, joined.column(col))
            tables.append(s.sort_by([("problem_id", "ascending"), ("sample_index", "ascending")]).select(names))
        if not tables:
            extra = [f for f in VERDICT_SCHEMA if f.name in VERDICT_COLUMNS and f.name not in SAMPLE_SCHEMA.names]
            schema = SAMPLE_SCHEMA
            for field in extra:
                schema = schema.append(field)
            return schema.empty_table().select(names)
        return pa.concat_tables(tables)

    def counts(self, models: Optional[Iterable[str]] = None) -> pa.Table:
        """``problem_id, model, n, c`` per problem and model; every sample must be verified."""
        table = self.samples(models, columns=["model", "problem_id", "sample_index", "correct"])
        if table.num_rows == 0:
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


def is_run_dir(path: Union[str, Path]) -> bool:
    return (Path(path) / "manifest.json").is_file()
