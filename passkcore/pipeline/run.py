"""The run directory: its layout, every schema and ``SCHEMA_VERSION``, shard writing and reading.

Layout::

    RUN/manifest.json                       schema version, problem set, per-model sampling settings
    RUN/problems.jsonl                      the problems the run was sampled on
    RUN/samples/<model>/<shard>.parquet     sample rows (SAMPLE_SCHEMA)
    RUN/verdicts/<model>/<shard>.parquet    verdict rows (VERDICT_SCHEMA)
    RUN/scores/<scorer>/<shard>.parquet     score rows (SCORE_SCHEMA), one folder per scorer label
    RUN/tokens/<scorer>/<shard>.parquet     token ids a scorer made for imported text (TOKENS_SCHEMA)
    RUN/imported/<model>/prompts.jsonl      an imported model's prompt texts, one per problem
    RUN/audits/<shard>.parquet              labels of correct samples (AUDIT_SCHEMA; passkcore.audit)

This is the only module that knows these paths. Every shard is written under a dot-prefixed temporary
name and renamed when complete; its name is a digest of the keys it holds, so writing the same keys
again names the same file and adds nothing. Readers skip temporary files. Reads go through
``pyarrow.dataset`` with only the columns asked for: planning and counts read key columns, and
token ids are read only by the item that scores them. Nothing stored is ever rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from passkcore._atomic import write_atomically, write_text_atomically
from passkcore.problems import OPTIONAL_FIELDS, Problem
from passkcore.scoring import SCORE_SCHEMA as ENGINE_SCORE_SCHEMA

if TYPE_CHECKING:
    import pyarrow.dataset as ds

SCHEMA_VERSION = 2
# Version 1 shards (before per-test results, answer keys and extraction policies) are still read: the
# columns they lack read as nulls.
READABLE_VERSIONS = (1, 2)
_VERSION_META = {b"passkcore.schema_version": str(SCHEMA_VERSION).encode()}
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
    # sha256 of the prompt's image digests (passkcore.images.images_digest); null for text prompts and
    # in shards written before images (read as null).
    ("image_digest", pa.string()),
], metadata=_VERSION_META)
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
], metadata=_VERSION_META)
SCORE_SCHEMA = ENGINE_SCORE_SCHEMA.with_metadata(_VERSION_META)  # the scoring engine owns its rows
# Imported samples carry text; the scoring stage tokenizes it and keeps the ids it scored here.
TOKENS_SCHEMA = pa.schema([
    ("model", pa.string()),
    ("problem_id", pa.string()),
    ("sample_index", pa.int32()),
    ("prompt_token_ids", pa.list_(pa.int32())),
    ("response_token_ids", pa.list_(pa.int32())),
], metadata=_VERSION_META)
# Labels of correct samples (passkcore.audit): a row per label given, never rewritten; the latest of an
# auditor's rows for a sample supersedes the older ones, which stay as history.
AUDIT_SCHEMA = pa.schema([
    ("model", pa.string()),
    ("problem_id", pa.string()),
    ("sample_index", pa.int32()),
    ("label", pa.string()),
    ("note", pa.string()),
    ("auditor", pa.string()),
    ("time", pa.timestamp("us", tz="UTC")),
], metadata=_VERSION_META)
KINDS = {"samples": SAMPLE_SCHEMA, "verdicts": VERDICT_SCHEMA, "scores": SCORE_SCHEMA, "tokens": TOKENS_SCHEMA}
# The key of a row within one folder: samples and verdicts are per model, scores and tokens hold every model.
KEY_COLUMNS = {"samples": ("problem_id", "sample_index"), "verdicts": ("problem_id", "sample_index"),
               "scores": ("model", "problem_id", "sample_index"), "tokens": ("model", "problem_id", "sample_index")}
IMPORTED_PROMPTS = "prompts.jsonl"
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_SHARD_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
Key = tuple[str, int]


def check_label(model: str) -> str:
    """Model and scorer labels name folders: letters, digits, '.', '_' and '-'."""
    if not isinstance(model, str) or not _LABEL.match(model):
        raise ValueError(f"model label {model!r} must be 1-100 letters, digits, '.', '_' or '-'")
    return model


def shard_name(kind: str, label: str, keys: Iterable[Sequence[Any]]) -> str:
    """The shard that holds these keys: a digest of (kind, folder label, sorted keys), the same on
    every attempt, so a retried write finds its shard in place."""
    text = json.dumps([kind, label, sorted([list(k) for k in keys])], separators=(",", ":"))
    return "w" + hashlib.sha256(text.encode()).hexdigest()[:40]


def write_shard(table: pa.Table, folder: Path, name: str) -> Path:
    """A new shard ``folder/name.parquet``: flushed under a temporary name, then renamed. A shard of
    that name already in place is kept as it is (a retried item adds nothing)."""
    if not _SHARD_NAME.match(name):
        raise ValueError(f"shard name {name!r} must be 1-100 letters, digits, '_' or '-'")
    target = folder / f"{name}.parquet"
    if target.exists():
        return target

    # Every shard carries the store version it was written under, whatever schema the rows came with.
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **_VERSION_META})

    def write(tmp: Path) -> None:
        pq.write_table(table, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())

    return write_atomically(target, write)


def shard_names(folder: Path) -> list[str]:
    """The file names of the complete shards in ``folder`` (temporary files of unfinished writes are
    skipped); names only, no Path objects: a write lists its folder every time."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    return [n for n in names if n.endswith(".parquet") and not n.startswith(".")]


def shard_files(folder: Path) -> list[Path]:
    """The complete shards in ``folder``, sorted."""
    return [folder / n for n in sorted(shard_names(folder))]


def check_version(path: str, schema: pa.Schema) -> None:
    version = (schema.metadata or {}).get(b"passkcore.schema_version", b"?").decode()
    if version not in {str(v) for v in READABLE_VERSIONS}:
        raise ValueError(f"{path}: written with store schema version {version}; this passkcore "
                         f"reads versions {READABLE_VERSIONS}")


_CHECKED: set[str] = set()  # shards whose schema version was read already: shards never change


def _check_versions(dataset: ds.FileSystemDataset) -> None:
    for fragment in dataset.get_fragments():
        if fragment.path in _CHECKED:
            continue
        check_version(fragment.path, fragment.physical_schema)
        _CHECKED.add(fragment.path)


def read_shards(files: Sequence[Path], schema: pa.Schema, columns: Optional[Sequence[str]] = None,
                filter: Optional[pc.Expression] = None) -> pa.Table:
    """These shards' rows, only ``columns`` (default: all), through ``pyarrow.dataset``. Columns an
    older shard lacks read as nulls. ``__filename`` may be asked for: each row's shard path."""
    names = list(columns) if columns is not None else schema.names
    if not files:
        fields = [schema.field(c) if c != "__filename" else pa.field(c, pa.string()) for c in names]
        return pa.schema(fields).empty_table()
    # Imported here, not at the top: pyarrow.dataset brings pandas (~0.5 s), and `passk --help`,
    # `passk estimate FILE.csv` and the report's imports reach this module without reading a shard.
    import pyarrow.dataset as ds

    dataset = ds.dataset([str(f) for f in files], schema=schema, format="parquet")
    _check_versions(dataset)
    return dataset.to_table(columns=names, filter=filter)


def read_key_columns(file: Path, columns: Sequence[str]) -> pa.Table:
    """One shard's key columns, read on this thread (present in every schema version). Planning reads
    shards one by one: Arrow's thread pools and their allocator heaps would cost more than the keys."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(file) as shard:
        check_version(str(file), shard.schema_arrow)
        return shard.read(columns=list(columns), use_threads=False)


class KeyIndex:
    """The keys stored in one folder, as sorted int64 codes (string part's position in ``strings``,
    shifted, plus the sample index): 8 bytes a key, and a write checks its keys with a binary search
    instead of reading the folder. Shards written by other processes are picked up by listing the
    folder and reading only the key columns of shards not seen before."""

    def __init__(self, folder: Path, kind: str) -> None:
        self.folder, self.kind = folder, kind
        self.columns = KEY_COLUMNS[kind]
        self.strings: list[str] = []
        self.position: dict[str, int] = {}
        self.sorted = np.empty(0, np.int64)
        self.recent: set[int] = set()
        self.seen: set[str] = set()

    def string_part(self, table: pa.Table) -> pa.ChunkedArray:
        parts = [table.column(c) for c in self.columns[:-1]]
        return parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, "\x1f")

    def codes(self, table: pa.Table) -> np.ndarray:
        """The int64 code of every row's key (new strings get new positions)."""
        if table.num_rows == 0:
            return np.empty(0, np.int64)
        strings = self.string_part(table)
        for s in pc.unique(strings).to_pylist():
            if s not in self.position:
                self.position[s] = len(self.strings)
                self.strings.append(s)
        pos = pc.index_in(strings, value_set=pa.array(self.strings, pa.string())).to_numpy(zero_copy_only=False)
        idx = table.column(self.columns[-1]).to_numpy()
        if idx.size and (idx.min() < 0 or idx.max() >= 2**31):
            bad = int(np.flatnonzero((idx < 0) | (idx >= 2**31))[0])
            raise ValueError(f"sample_index must be in [0, 2**31), got {int(idx[bad])} at row {bad}")
        codes = pos.astype(np.int64)  # in place from here: 8 bytes a row beside the columns
        codes <<= 32
        codes |= idx
        return codes

    def refresh(self) -> KeyIndex:
        new = sorted(set(shard_names(self.folder)).difference(self.seen))
        if new:
            self.add(self.read_codes([self.folder / n for n in new]))
            self.seen.update(new)
        return self

    def read_codes(self, files: Sequence[Path]) -> np.ndarray:
        """The codes of these shards' keys, into one array sized from the footers and filled one shard
        at a time: 8 bytes a key. (1,000,000 keys: +10 MiB over a 2,000-key folder; through
        ``pyarrow.dataset`` in 64k-row groups, +22 MiB; the folder's key columns read at once, +140 MiB.)"""
        import pyarrow.parquet as pq

        sizes = [pq.read_metadata(f).num_rows for f in files]
        codes = np.empty(sum(sizes), np.int64)
        at = 0
        for file in files:
            part = self.codes(read_key_columns(file, list(self.columns)))
            codes[at:at + part.size] = part
            at += part.size
        return codes[:at]

    def add(self, codes: np.ndarray) -> None:
        # A folder read whole (a first refresh) goes straight into the sorted codes, sorted in place:
        # through the set it took ~70 bytes a key of Python ints (1,000,000 keys: +235 MiB on the heap).
        bulk = codes.size * 16 > max(self.sorted.size, 4096)
        if bulk and self.sorted.size == 0 and not self.recent:
            codes.sort()
            first = np.ones(codes.size, bool)  # a key stored twice counts once (1 byte a key, for the moment)
            np.not_equal(codes[1:], codes[:-1], out=first[1:])
            self.sorted = codes if first.all() else codes[first]
            return
        if not bulk:
            self.recent.update(codes.tolist())
        # Folding the recent keys in costs a copy of the index: done once they are 1/16 of it.
        if bulk or len(self.recent) * 16 > max(self.sorted.size, 4096):
            recent = np.fromiter(self.recent, np.int64, len(self.recent))
            self.sorted = np.union1d(self.sorted, np.concatenate([recent, codes]) if bulk else recent)
            self.recent.clear()

    def contains(self, codes: np.ndarray) -> np.ndarray:
        at = np.searchsorted(self.sorted, codes)
        found = at < self.sorted.size
        found[found] = self.sorted[at[found]] == codes[found]
        if self.recent:
            found |= np.fromiter((int(c) in self.recent for c in codes), bool, codes.size)
        return found

    def indices_of(self, string: str) -> np.ndarray:
        """The sample indices stored under one string part (a problem id, for samples and verdicts),
        ascending and distinct: a slice of the sorted codes found by binary search."""
        pos = self.position.get(string)
        if pos is None:
            found = np.empty(0, np.int64)
        else:
            lo, hi = np.searchsorted(self.sorted, [pos << 32, (pos + 1) << 32])
            found = self.sorted[lo:hi] & 0xFFFFFFFF
        mine = [c & 0xFFFFFFFF for c in self.recent if c >> 32 == pos] if pos is not None else []
        return np.union1d(found, np.array(mine, np.int64)) if mine else found

    def __len__(self) -> int:
        return int(self.sorted.size) + len(self.recent)


def problems_text(problems: Sequence[Problem]) -> str:
    return "".join(json.dumps({k: v for k, v in asdict(p).items() if v is not None or k not in OPTIONAL_FIELDS},
                              sort_keys=True) + "\n" for p in problems)


def is_run_dir(path: Union[str, Path]) -> bool:
    return (Path(path) / "manifest.json").is_file()


def manifest_path(root: Path) -> Path:
    return root / "manifest.json"


def problems_path(root: Path) -> Path:
    return root / "problems.jsonl"


def folder(root: Path, kind: str, label: str) -> Path:
    """RUN/<kind>/<label>: one model's samples or verdicts, or one scorer's scores or token ids."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    return root / kind / check_label(label)


def audits_folder(root: Path) -> Path:
    """RUN/audits: every auditor's labels, one shard per file applied or label saved."""
    return root / "audits"


def imported_prompts_path(root: Path, model: str) -> Path:
    """RUN/imported/<model>/prompts.jsonl: the prompt texts an imported model label was sampled on."""
    return root / "imported" / check_label(model) / IMPORTED_PROMPTS


def labels(root: Path, kind: str) -> list[str]:
    base = root / kind
    return sorted(e.name for e in os.scandir(base) if e.is_dir()) if base.is_dir() else []


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    write_text_atomically(manifest_path(root), json.dumps(manifest, indent=2))
