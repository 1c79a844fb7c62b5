"""Large single JSON documents (Inspect ``.json`` logs, OpenCompass results and predictions) read item by
item with ijson where it is installed (the ``inspect-ai`` extra brings it), else parsed whole; and the
model labels the importers derive from a stack's own model names.

A truncated or malformed document is a ValueError naming the file and what was being read, raised
while the import's first pass reads it: nothing is written before every input has been read through.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_BAD_LABEL = re.compile(r"[^A-Za-z0-9._-]+")


def label_of(name: str) -> str:
    """A stack's model name as a passkcore label: characters outside letters, digits, '.', '_' and '-'
    become '_' (``mockllm/model`` -> ``mockllm_model``), cut to 100 characters."""
    return _BAD_LABEL.sub("_", name).strip("_")[:100] or "model"


def _ijson() -> Any:
    try:
        import ijson
    except ImportError:
        return None
    return ijson


def load_whole(path: Path) -> Any:
    """The whole document; a syntax error or a truncated file names the file and its line."""
    try:
        with path.open("rb") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); truncated or not a JSON document") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 JSON ({exc.reason})") from None


def items(path: Path, prefix: str, what: str) -> Iterator[Any]:
    """The values under ``prefix`` in ijson's notation (``"samples.item"``: each element of the top-level
    ``samples`` list; ``"details.item"``; ``""``: the document), one at a time; ``what`` names them in
    errors (``"sample"``: "...: truncated or invalid JSON after sample 12")."""
    ijson = _ijson()
    if ijson is None:
        yield from _walk(load_whole(path), prefix)
        return
    count = 0
    with path.open("rb") as fh:
        try:
            for value in ijson.items(fh, prefix, use_float=True):
                yield value
                count += 1
            return
        except (ijson.JSONError, ijson.IncompleteJSONError, UnicodeDecodeError) as exc:
            if not _nan_or_inf(exc):
                raise ValueError(f"{path}: truncated or invalid JSON after {what} {count} ({str(exc).strip()[:120]})") from None
    # NaN and Infinity (Python's json and pydantic write them; Inspect's unscored values are NaN) stop
    # ijson: the rest comes from one whole parse, after the items already given.
    for i, value in enumerate(_walk(load_whole(path), prefix)):
        if i >= count:
            yield value


def kv_items(path: Path, prefix: str, what: str) -> Iterator[tuple[str, Any]]:
    """The (key, value) pairs of the object under ``prefix`` (``""``: the top-level object), one at a time."""
    ijson = _ijson()
    if ijson is None:
        doc = load_whole(path)
        for obj in _walk(doc, prefix):
            if not isinstance(obj, dict):
                raise ValueError(f"{path}: expected a JSON object, got {type(obj).__name__}")
            yield from obj.items()
        return
    count = 0
    with path.open("rb") as fh:
        try:
            for key, value in ijson.kvitems(fh, prefix, use_float=True):
                yield key, value
                count += 1
            return
        except (ijson.JSONError, ijson.IncompleteJSONError, UnicodeDecodeError) as exc:
            if not _nan_or_inf(exc):
                raise ValueError(f"{path}: truncated or invalid JSON after {what} {count} ({str(exc).strip()[:120]})") from None
    for obj in _walk(load_whole(path), prefix):
        if isinstance(obj, dict):
            yield from list(obj.items())[count:]


def first_key(path: Path) -> Any:
    """The first key of a top-level object (None for an empty object or another JSON value), reading
    as little of the file as ijson needs."""
    ijson = _ijson()
    if ijson is None:
        doc = load_whole(path)
        return next(iter(doc), None) if isinstance(doc, dict) else None
    with path.open("rb") as fh:
        try:
            for prefix, event, value in ijson.parse(fh):
                if prefix == "" and event == "map_key":
                    return value
                if prefix == "" and event in ("end_map", "start_array", "string", "number", "boolean", "null"):
                    return None
        except (ijson.JSONError, ijson.IncompleteJSONError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: truncated or invalid JSON ({str(exc).strip()[:120]})") from None
    return None


def _nan_or_inf(exc: BaseException) -> bool:
    """ijson's errors on NaN/Infinity literals (the messages inspect_ai's own reader checks for)."""
    text = str(exc).lower()
    return any(m in text for m in ("invalid json character", "invalid char in json text", "unexpected symbol",
                                   "a digit is required after the minus sign"))


def _walk(doc: Any, prefix: str) -> Iterator[Any]:
    """ijson's prefix semantics over a parsed document (``a.item.b``: each ``b`` of each element of ``a``)."""
    nodes = [doc]
    for part in [p for p in prefix.split(".") if p]:
        nxt = []
        for node in nodes:
            if part == "item" and isinstance(node, list):
                nxt.extend(node)
            elif isinstance(node, dict) and part in node:
                nxt.append(node[part])
        nodes = nxt
    yield from nodes
