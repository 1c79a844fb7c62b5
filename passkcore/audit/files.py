"""Audit files: ``passk audit export`` writes the queue as CSV or JSONL, ``passk audit apply`` reads it
back, labelled.

Columns (CSV header, or JSONL keys): ``problem_id, model, sample_index, prompt, response, answer, n, c,
label, note``; ``answer`` is the problem's reference answer (empty for code), ``label`` is empty until
a reviewer writes ``valid``, ``guess`` or ``unsure`` (any case). Applying a file checks every line
first: a label outside the three, a sample the run does not hold, or a sample that is not correct is
a ValueError naming the line and the value, and nothing of that file is stored. Rows with an empty
label are skipped; a sample labelled on two lines is an error naming both.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Optional, Union

from passkcore._atomic import write_atomically
from passkcore.audit.queue import QueueItem, audit_queue, sample_details
from passkcore.audit.store import DEFAULT_AUDITOR, LABELS, Label, check_auditor, check_labels, opened, store_labels
from passkcore.jsonio import jsonl_objects
from passkcore.pipeline.store import SampleStore

COLUMNS = ("problem_id", "model", "sample_index", "prompt", "response", "answer", "n", "c", "label", "note")
REQUIRED = ("problem_id", "model", "sample_index", "label")
SUFFIXES = (".csv", ".jsonl")


def file_format(path: Union[str, Path], flag: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{flag}: {str(path)!r} must end in .csv or .jsonl")
    return suffix[1:]


def problem_texts(store: SampleStore) -> dict[str, tuple[str, str]]:
    """``{problem_id: (prompt, reference answer)}``; empty for a run without problems.jsonl."""
    try:
        problems = store.problems()
    except ValueError:
        return {}
    return {p.id: (p.prompt, p.answer or "") for p in problems}


def export_rows(store: SampleStore, queue: list[QueueItem]) -> list[dict[str, Any]]:
    """The file rows of a queue: each sample's response and its problem's prompt and answer."""
    texts = problem_texts(store)
    responses = {key: row["response"] or "" for key, row in sample_details(store, queue).items()}
    return [{"problem_id": i.problem_id, "model": i.model, "sample_index": i.sample_index,
             "prompt": texts.get(i.problem_id, ("", ""))[0], "response": responses.get(i.key, ""),
             "answer": texts.get(i.problem_id, ("", ""))[1], "n": i.n, "c": i.c, "label": "", "note": ""}
            for i in queue]


def export_audit(run: Union[str, Path, SampleStore], out: Union[str, Path], *, hardest: int = 20,
                 per_problem: int = 4, models: Optional[list[str]] = None, seed: int = 0) -> int:
    """Writes the audit queue to ``out`` (CSV or JSONL by suffix, written whole); returns its rows."""
    fmt = file_format(out, "--out")
    store = opened(run)
    rows = export_rows(store, audit_queue(store, hardest=hardest, per_problem=per_problem, models=models, seed=seed))

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            if fmt == "csv":
                writer = csv.DictWriter(fh, fieldnames=list(COLUMNS))
                writer.writeheader()
                writer.writerows(rows)
            else:
                for row in rows:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")

    write_atomically(out, write)
    return len(rows)


def read_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """``("FILE:LINE", row)`` for each row of a CSV (the line a record starts on) or JSONL file."""
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if file_format(path, "FILE") == "jsonl":
        return list(jsonl_objects(path))
    out = []
    # utf-8-sig: a spreadsheet's "CSV UTF-8" starts with a byte-order mark, which would hide problem_id.
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}:1: missing column(s) {', '.join(missing)}; an audit file has {', '.join(COLUMNS)}")
        start = 2
        for row in reader:
            out.append((f"{path}:{start}", row))
            start = reader.line_num + 1  # a quoted response spans lines: the next record starts after it
    return out


def parse_label(where: str, row: dict[str, Any]) -> Optional[Label]:
    """The Label of one row (None: empty label); a ValueError names the place, the field and the value."""
    missing = [c for c in REQUIRED if c not in row]
    if missing:
        raise ValueError(f"{where}: missing field(s) {', '.join(missing)}")
    label = row.get("label")
    if label is None or (isinstance(label, str) and not label.strip()):
        return None
    if not isinstance(label, str) or label.strip().lower() not in LABELS:
        raise ValueError(f"{where}: label {label!r} is not one of {', '.join(LABELS)}")
    note = row.get("note")
    note = "" if note is None else note
    if not isinstance(note, str):
        raise ValueError(f"{where}: note {note!r} must be text")
    index = row.get("sample_index")
    try:
        number = int(str(index).strip()) if not isinstance(index, bool) else None
    except ValueError:
        number = None
    if number is None:
        raise ValueError(f"{where}: sample_index {index!r} is not an integer")
    for field in ("problem_id", "model"):
        if not isinstance(row[field], (str, int)) or isinstance(row[field], bool) or str(row[field]) == "":
            raise ValueError(f"{where}: {field} {row[field]!r} must be a non-empty string")
    return Label(str(row["model"]), str(row["problem_id"]), number, label.strip().lower(), note)


def read_labels(path: Union[str, Path]) -> list[tuple[str, Label]]:
    """Every labelled row of an audit file, with its place; a sample labelled twice names both lines."""
    out: list[tuple[str, Label]] = []
    seen: dict[tuple[str, str, int], str] = {}
    for where, row in read_rows(Path(path)):
        item = parse_label(where, row)
        if item is None:
            continue
        if item.key in seen:
            raise ValueError(f"{where}: sample (model {item.model!r}, problem_id {item.problem_id!r}, sample_index "
                             f"{item.sample_index}) is labelled again (first at {seen[item.key]})")
        seen[item.key] = where
        out.append((where, item))
    return out


def apply_audit(run: Union[str, Path, SampleStore], path: Union[str, Path], auditor: str = DEFAULT_AUDITOR) -> tuple[int, int]:
    """Checks every row of a labelled audit file, then stores its labels as one shard (all or nothing);
    returns (labelled rows, rows newly stored)."""
    auditor = check_auditor(auditor)
    store = opened(run)
    labels = read_labels(path)
    check_labels(store, labels)
    return len(labels), store_labels(store, [item for _, item in labels], auditor)
