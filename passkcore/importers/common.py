"""What every importer yields: record batches of IMPORT_SCHEMA, built row by row in bounded batches."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import pyarrow as pa

from passkcore.numbers.counts import COUNTS_SCHEMA

Paths = Union[str, Path, Sequence[Union[str, Path]]]

# One row per sample. ``correct`` is null where the source keeps only the text (lm-eval with repeats,
# lighteval): the import verifies those against ``answer``. ``source`` is FILE:LINE (or entry/row) for
# error messages.
IMPORT_SCHEMA = pa.schema([
    ("model", pa.string()),
    ("problem_id", pa.string()),
    ("sample_index", pa.int32()),
    ("prompt", pa.string()),
    ("response", pa.string()),
    ("correct", pa.bool_()),
    ("verifier", pa.string()),
    ("reason", pa.string()),
    ("extracted_answer", pa.string()),
    ("answer", pa.string()),
    ("prompt_token_ids", pa.list_(pa.int32())),
    ("response_token_ids", pa.list_(pa.int32())),
    ("finish_reason", pa.string()),
    ("source", pa.string()),
])
BATCH_ROWS = 8192
COUNTS = COUNTS_SCHEMA


def as_paths(paths: Paths) -> list[Path]:
    """One path or several; each must exist."""
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not items:
        raise ValueError("no input files")
    out = []
    for p in items:
        path = Path(p)
        if not path.is_file():
            raise ValueError(f"input file {str(path)!r} does not exist")
        out.append(path)
    return out


def batched(rows: Iterable[Mapping[str, Any]], batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """IMPORT_SCHEMA record batches of at most ``batch_rows`` rows; absent columns are null."""
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
    names = IMPORT_SCHEMA.names
    buffer: list[dict[str, Any]] = []
    for row in rows:
        buffer.append({name: row.get(name) for name in names})
        if len(buffer) >= batch_rows:
            yield pa.RecordBatch.from_pylist(buffer, schema=IMPORT_SCHEMA)
            buffer = []
    if buffer:
        yield pa.RecordBatch.from_pylist(buffer, schema=IMPORT_SCHEMA)


def to_table(batches: Iterable[pa.RecordBatch], schema: pa.Schema = IMPORT_SCHEMA) -> pa.Table:
    return pa.Table.from_batches(list(batches), schema=schema)


def need(row: Mapping[str, Any], name: str, where: str, kind: Union[type, tuple[type, ...]]) -> Any:
    """``row[name]``, which must be of ``kind``; the error names the place and the field."""
    value = row.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ValueError(f"{where}: field {name!r} must be a {want}, got {type(value).__name__}")
    return value


def as_bool(value: Any, where: str, name: str) -> bool:
    """A per-sample verdict: bools, 0/1 and the strings true/false/pass/fail."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "pass", "fail", "1", "0"):
        return value.lower() in ("true", "pass", "1")
    raise ValueError(f"{where}: field {name!r} must be a verdict (true/false), got {value!r}")
