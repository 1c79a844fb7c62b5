"""The generic samples format: one sample per JSONL line or Parquet row.

Columns: ``problem_id`` (string or integer), ``model`` (label; ``--model`` overrides it),
``sample_index`` (integer >= 0, unique per problem and model), ``prompt`` (text), ``response`` (text),
``correct`` (true/false, or null to verify against ``answer``); optional ``answer`` (reference answer),
``prompt_token_ids`` and ``response_token_ids`` (integer lists, kept as the source of truth for
scoring) and ``finish_reason``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pyarrow as pa

from passkcore.importers.common import BATCH_ROWS, Paths, as_bool, as_paths, batched, to_table
from passkcore.problem_files import iter_records

REQUIRED = ("problem_id", "sample_index", "response")


def _token_ids(value: Any, where: str, name: str) -> Optional[list[int]]:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t < 2**31
                                              for t in value):
        raise ValueError(f"{where}: field {name!r} must be a list of token ids (non-negative integers)")
    return value


def sample_row(record: dict[str, Any], where: str, model: Optional[str]) -> dict[str, Any]:
    """One IMPORT_SCHEMA row from one generic record; errors name the place and the field."""
    for name in REQUIRED:
        if record.get(name) is None:
            raise ValueError(f"{where}: missing field {name!r}")
    pid, index = record["problem_id"], record["sample_index"]
    if not isinstance(pid, (str, int)) or isinstance(pid, bool) or pid == "":
        raise ValueError(f"{where}: field 'problem_id' must be a non-empty string or integer, got {pid!r}")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 2**31:
        raise ValueError(f"{where}: field 'sample_index' must be an integer >= 0, got {index!r}")
    label = model or record.get("model")
    if not isinstance(label, str) or not label:
        raise ValueError(f"{where}: missing field 'model' (or give --model)")
    for name in ("prompt", "response", "answer", "finish_reason"):
        if record.get(name) is not None and not isinstance(record[name], str):
            raise ValueError(f"{where}: field {name!r} must be a string, got {type(record[name]).__name__}")
    correct = record.get("correct")
    return {
        "model": label, "problem_id": str(pid), "sample_index": index,
        "prompt": record.get("prompt"), "response": record["response"],
        "correct": None if correct is None else as_bool(correct, where, "correct"),
        "verifier": "imported" if correct is not None else None,
        "reason": None if correct is None else ("correct" if as_bool(correct, where, "correct") else "wrong"),
        "answer": None if record.get("answer") is None else str(record["answer"]),
        "prompt_token_ids": _token_ids(record.get("prompt_token_ids"), where, "prompt_token_ids"),
        "response_token_ids": _token_ids(record.get("response_token_ids"), where, "response_token_ids"),
        "finish_reason": record.get("finish_reason"), "source": where,
    }


def iter_samples(paths: Paths, *, model: Optional[str] = None, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """IMPORT_SCHEMA batches from generic samples files (JSONL, JSON or Parquet), streamed."""
    files = as_paths(paths)

    def rows() -> Iterator[dict[str, Any]]:
        for path in files:
            if Path(path).suffix.lower() not in (".jsonl", ".json", ".parquet"):
                raise ValueError(f"{path}: generic samples must be .jsonl, .json or .parquet")
            for where, record in iter_records(path):
                yield sample_row(record, where, model)

    return batched(rows(), batch_rows)


def read_samples(paths: Paths, *, model: Optional[str] = None, batch_rows: int = BATCH_ROWS) -> pa.Table:
    """The generic samples files as one IMPORT_SCHEMA table."""
    return to_table(iter_samples(paths, model=model, batch_rows=batch_rows))
