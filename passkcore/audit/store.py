"""The ``audits/`` table of a run: labels of correct samples, written once, history kept.

A row is one label given: ``model, problem_id, sample_index`` (the sample's key), ``label`` (``valid``,
``guess`` or ``unsure``), ``note``, ``auditor`` and ``time`` (UTC). Every file applied, and every label
saved on the review page, is one shard under RUN/audits, written whole (temporary name, then a rename)
or not at all. A label that is already the auditor's latest for that sample, with the same note, adds
nothing, so a file applied twice stores its labels once; a newer label of the same auditor for the
same sample supersedes the older one, which stays in the table as history. Auditors named
``judge:<model>`` are LLM judges (``passk audit judge``); every other auditor is a person.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Union

import pyarrow as pa
import pyarrow.compute as pc

from passkcore.pipeline.run import AUDIT_SCHEMA, audits_folder, read_shards, shard_files, shard_name, write_shard
from passkcore.pipeline.store import SampleStore

LABELS = ("valid", "guess", "unsure")
JUDGE_PREFIX = "judge:"
DEFAULT_AUDITOR = "human"
# A note is a reviewer's sentence or a judge's answer, not a document: longer ones are refused (apply)
# or cut (judge), so a pasted response cannot bloat every read of the table.
MAX_NOTE = 4000
_AUDITOR = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")
Key = tuple[str, str, int]  # (model, problem_id, sample_index)


@dataclass(frozen=True)
class Label:
    """One label to store: the sample's key, the label and the note."""

    model: str
    problem_id: str
    sample_index: int
    label: str
    note: str = ""

    @property
    def key(self) -> Key:
        return (self.model, self.problem_id, self.sample_index)


def check_auditor(auditor: Any) -> str:
    """An auditor name: 1-200 printable characters, not only spaces."""
    if not isinstance(auditor, str) or not _AUDITOR.match(auditor) or not auditor.strip():
        raise ValueError(f"--auditor: {auditor!r} must be 1-200 printable characters")
    return auditor


def is_judge(auditor: str) -> bool:
    return auditor.startswith(JUDGE_PREFIX)


def opened(run: Union[str, Path, SampleStore]) -> SampleStore:
    return run if isinstance(run, SampleStore) else SampleStore(run)


def read_audits(run: Union[str, Path, SampleStore]) -> pa.Table:
    """Every stored label of a run, oldest first (ties in time: by shard, then row)."""
    store = opened(run)
    files = shard_files(audits_folder(store.root))
    table = read_shards(files, AUDIT_SCHEMA, [*AUDIT_SCHEMA.names, "__filename"])
    if table.num_rows == 0:
        return AUDIT_SCHEMA.empty_table()
    order = pa.array(range(table.num_rows), pa.int64())
    table = table.append_column("__row", order)
    table = table.sort_by([("time", "ascending"), ("__filename", "ascending"), ("__row", "ascending")])
    return table.select(AUDIT_SCHEMA.names)


def latest_labels(audits: pa.Table, auditor: Optional[str] = None) -> dict[Key, dict[str, Any]]:
    """The latest row per sample: of ``auditor``'s rows, or (None) of every person's rows (not the
    judges'). ``audits`` is ``read_audits``' table, oldest first."""
    if audits.num_rows == 0:
        return {}
    names = audits.column("auditor")
    if auditor is None:
        keep = pc.invert(pc.starts_with(names, JUDGE_PREFIX))
    else:
        keep = pc.equal(names, auditor)
    out: dict[Key, dict[str, Any]] = {}
    for row in audits.filter(keep).to_pylist():  # oldest first: later rows overwrite
        out[(row["model"], row["problem_id"], int(row["sample_index"]))] = row
    return out


def auditors(audits: pa.Table) -> list[str]:
    """The auditors with a label in the table, people first, then judges, by name."""
    names = sorted(set(audits.column("auditor").to_pylist()))
    return [a for a in names if not is_judge(a)] + [a for a in names if is_judge(a)]


def correctness(store: SampleStore, keys: Iterable[Key]) -> dict[Key, Optional[bool]]:
    """Each stored key's verdict (None: not verified); keys the run does not hold are left out. One
    read of key and verdict columns per model named, filtered to the problems named."""
    wanted: dict[str, set[str]] = {}
    for model, pid, _ in keys:
        wanted.setdefault(model, set()).add(pid)
    out: dict[Key, Optional[bool]] = {}
    for model, pids in wanted.items():
        if model not in store.models:
            continue
        table = store.samples(models=[model], columns=["problem_id", "sample_index", "correct"])
        table = table.filter(pc.is_in(table.column("problem_id"), value_set=pa.array(sorted(pids), pa.string())))
        for pid, idx, ok in zip(*(table.column(c).to_pylist() for c in ("problem_id", "sample_index", "correct"))):
            out[(model, pid, int(idx))] = ok
    return out


def check_labels(store: SampleStore, labels: Sequence[tuple[str, Label]]) -> None:
    """A ValueError naming the place (``FILE:LINE``) and the value of the first label that is not one of
    LABELS, names a sample the run does not hold, or names a sample that is not correct."""
    for where, item in labels:
        if item.label not in LABELS:
            raise ValueError(f"{where}: label {item.label!r} is not one of {', '.join(LABELS)}")
        if len(item.note) > MAX_NOTE:
            raise ValueError(f"{where}: note of {len(item.note)} characters; at most {MAX_NOTE}")
    verdicts = correctness(store, [item.key for _, item in labels])
    for where, item in labels:
        key = item.key
        if key not in verdicts:
            raise ValueError(f"{where}: unknown sample (model {key[0]!r}, problem_id {key[1]!r}, sample_index "
                             f"{key[2]}): {store.root} holds no such sample")
        if verdicts[key] is not True:
            state = "not verified" if verdicts[key] is None else "incorrect"
            raise ValueError(f"{where}: sample (model {key[0]!r}, problem_id {key[1]!r}, sample_index {key[2]}) "
                             f"is {state}; only correct samples are audited")


def store_labels(run: Union[str, Path, SampleStore], labels: Sequence[Label], auditor: str,
                 now: Optional[datetime] = None, current: Optional[Mapping[Key, Mapping[str, Any]]] = None) -> int:
    """Stores, as one shard, the labels that are not already ``auditor``'s latest (with the same note)
    for their sample; returns how many. The labels must be checked (``check_labels``) first.

    ``current``: the auditor's latest labels as the caller keeps them (the review page, which saves one
    label a keystroke); by default they are read from the table, whose every shard is read: 0.4-0.8 s at
    300 shards on 2 busy cores. 300 labels saved one by one: 99.5 s reading the table each time, 4.3 s
    with ``current`` (2026-12-06, 2 loaded cores)."""
    store = opened(run)
    auditor = check_auditor(auditor)
    if current is None:
        current = latest_labels(read_audits(store), auditor)
    fresh = {}
    for item in labels:
        known = current.get(item.key)
        if known is None or (known["label"], known["note"] or "") != (item.label, item.note):
            fresh[item.key] = item  # a key given twice: the last one
    if not fresh:
        return 0
    when = now or datetime.now(timezone.utc)
    rows = [{"model": i.model, "problem_id": i.problem_id, "sample_index": i.sample_index, "label": i.label,
             "note": i.note, "auditor": auditor, "time": when} for i in fresh.values()]
    table = pa.Table.from_pylist(rows, schema=AUDIT_SCHEMA)
    # The time is part of the name: the same labels given again after others (valid, guess, valid) are a
    # new shard, not the first one found in place.
    name = shard_name("audits", auditor, [[*i.key, i.label, i.note, when.isoformat()] for i in fresh.values()])
    write_shard(table, audits_folder(store.root), name)
    return len(rows)


def label_counts(latest: Mapping[Key, Mapping[str, Any]]) -> dict[str, int]:
    """How many samples carry each label."""
    out = dict.fromkeys(LABELS, 0)
    for row in latest.values():
        out[row["label"]] = out.get(row["label"], 0) + 1
    return out
