"""JSON and JSONL files read with errors that name the file and the line (problem files, importers)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def jsonl_objects(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """``("FILE:LINE", object)`` for each non-blank line, streamed: one line in memory at a time."""
    with path.open() as fh:
        for lineno, text in enumerate(fh, 1):
            if not text.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise ValueError(f"{where}: expected a JSON object")
            yield where, record


def read_json(path: Path) -> Any:
    """A whole JSON document; a syntax error names the file and its line."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
