"""Inspect (``inspect_ai``) eval logs: ``.eval`` (zip) and ``.json``, finished or not.

Read in inspect_ai 0.3.285 (``log/_recorders/eval.py``, ``log/_log.py``, ``scorer/_metric.py``):

- ``.eval`` is a zip (members zstd-compressed since 0.3.1xx: Python < 3.14 reads them through the
  ``zipfile-zstd`` package, which inspect-ai depends on). ``header.json`` holds the eval spec
  (``eval.model``, ``eval.config.epochs``, ``eval.scorers``) once the run has finished; an unfinished
  run has ``_journal/start.json`` with the same ``eval`` block. One member per sample and epoch,
  ``samples/{id}_epoch_{e}.json``: ``id``, ``epoch``, ``input`` (text or chat messages), ``target``,
  ``output.completion`` (the final output text), ``output.choices[0].stop_reason`` and ``scores``
  (``{scorer: {value, answer, explanation}}``). Without sample members, the sample summaries
  (``summaries.json``, or ``_journal/summaries/N.json`` of an unfinished run) carry the same ids,
  epochs and scores, without the output text.
- ``.json`` is one document: ``eval`` (the same spec) and ``samples`` (the same sample objects),
  read sample by sample with ijson.

n per sample = its scored epochs (an epoch with no score for the chosen scorer, or a NaN value, is
unscored: it errored, or the run stopped before scoring it). A value reads as Inspect's
``value_to_float``: ``C`` 1, ``P`` 0.5, ``I`` and ``N`` 0, booleans, numbers, numeric strings and
yes/no/true/false; correct = value >= ``threshold`` (default 1.0, as Inspect's own ``pass_at``).
A value Inspect would only warn about (a dict, a list, other text) is an error here.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pyarrow as pa

from passkcore.importers.common import BATCH_ROWS, Paths, as_paths, batched, to_table
from passkcore.importers.jsondoc import items, label_of

_MEMBER = re.compile(r"^samples/(?P<id>.+)_epoch_(?P<epoch>\d+)\.json$")
_ZSTD = 93  # the zip compression method Inspect writes
_LETTERS = {"C": 1.0, "P": 0.5, "I": 0.0, "N": 0.0}


def value_to_float(value: Any, where: str) -> Optional[float]:
    """Inspect's ``value_to_float()`` with its default letters; None for an unscored (NaN/None) value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str) and value in _LETTERS:
        return _LETTERS[value]
    if isinstance(value, (bool, int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.lower()
        if text in ("yes", "true"):
            return 1.0
        if text in ("no", "false"):
            return 0.0
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if math.isfinite(number):
            return number
    raise ValueError(f"{where}: score value {value!r} is not a verdict (C/I/P/N, a boolean, a number); "
                     "passkcore needs one scalar value per epoch")


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"{path}: not a readable .eval log (zip): {exc}; the file is truncated or not an Inspect log") from None
    if any(info.compress_type == _ZSTD for info in zf.infolist()) and sys.version_info < (3, 14):
        try:
            import zipfile_zstd  # noqa: F401  (patches zipfile with zstd, as inspect_ai itself does)
        except ImportError:
            raise ImportError(f"{path}: the log's members are zstd-compressed; reading them on Python < 3.14 needs "
                              "the zipfile-zstd package: pip install 'passkcore[inspect-ai]'") from None
    return zf


def _member(zf: zipfile.ZipFile, path: Path, name: str) -> Any:
    try:
        text = zf.read(name)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError) as exc:
        raise ValueError(f"{path}!{name}: cannot read this member ({exc}); the log is truncated") from None
    except Exception as exc:  # zstandard.ZstdError and others: the codec's own error types
        raise ValueError(f"{path}!{name}: cannot decompress this member ({type(exc).__name__}: {exc}); "
                         "the log is truncated") from None
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}!{name}: not valid JSON ({exc}); the log is truncated") from None


class _Log:
    """One log's spec and its samples (dicts), in the order Inspect wrote them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.suffix == ".eval":
            self.zf: Optional[zipfile.ZipFile] = _open_zip(path)
            names = self.zf.namelist()
            head = "header.json" if "header.json" in names else "_journal/start.json"
            if head not in names:
                raise ValueError(f"{path}: neither header.json nor _journal/start.json: not an Inspect .eval log")
            spec = _member(self.zf, path, head)
            self.members = [n for n in names if _MEMBER.match(n)]
            self.summaries = [n for n in names if n == "summaries.json"] or sorted(
                (n for n in names if n.startswith("_journal/summaries/")), key=_journal_number)
        else:
            self.zf, self.members, self.summaries = None, [], []
            spec = next(iter(items(path, "eval", "header")), None)
            spec = {"eval": spec} if spec is not None else None
        if not isinstance(spec, dict) or not isinstance(spec.get("eval"), dict):
            raise ValueError(f"{path}: no 'eval' block: not an Inspect log")
        self.eval: dict[str, Any] = spec["eval"]
        config = self.eval.get("config") if isinstance(self.eval.get("config"), dict) else {}
        self.epochs = config.get("epochs") if isinstance(config.get("epochs"), int) else None
        self.scorers = [s["name"] for s in self.eval.get("scorers") or [] if isinstance(s, dict) and "name" in s]

    def samples(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(where, sample)`` per sample and epoch."""
        if self.zf is None:
            for i, sample in enumerate(items(self.path, "samples.item", "sample")):
                yield f"{self.path}: samples[{i}]", sample
            return
        if self.members:
            for name in self.members:
                yield f"{self.path}!{name}", _member(self.zf, self.path, name)
            return
        seen: set[tuple[str, Any]] = set()
        for name in self.summaries:
            summaries = _member(self.zf, self.path, name)
            if not isinstance(summaries, list):
                raise ValueError(f"{self.path}!{name}: expected a list of sample summaries")
            for i, summary in enumerate(summaries):
                key = (str(summary.get("id")), summary.get("epoch")) if isinstance(summary, dict) else ("", i)
                if key not in seen:  # journal files of an unfinished run may repeat a summary
                    seen.add(key)
                    yield f"{self.path}!{name}[{i}]", summary


def _journal_number(name: str) -> int:
    stem = Path(name).stem
    return int(stem) if stem.isdigit() else 0


def _scorer(log: _Log, chosen: Optional[str], sample: dict[str, Any], where: str) -> str:
    names = log.scorers or list(sample.get("scores") or {})
    if chosen is not None:
        if log.scorers and chosen not in log.scorers:
            raise ValueError(f"{log.path}: no scorer {chosen!r}; the log's scorers: {', '.join(log.scorers)}")
        return chosen
    if len(names) != 1:
        raise ValueError(f"{where}: the log has {len(names)} scorers ({', '.join(names) or 'none'}); choose one with "
                         "--scorer NAME (scorer='NAME')")
    return names[0]


def _text(value: Any) -> Optional[str]:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        return value[0]
    return None


def _row(sample: dict[str, Any], where: str, label: str, scorer: str, threshold: float) -> Optional[dict[str, Any]]:
    """The IMPORT_SCHEMA row of one sample epoch, or None where it is unscored."""
    for name in ("id", "epoch"):
        if sample.get(name) is None:
            raise ValueError(f"{where}: missing field {name!r}")
    epoch = sample["epoch"]
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
        raise ValueError(f"{where}: field 'epoch' must be an integer >= 1, got {epoch!r}")
    score = (sample.get("scores") or {}).get(scorer)
    if not isinstance(score, dict):
        return None
    value = value_to_float(score.get("value"), f"{where}: scores.{scorer}")
    if value is None:
        return None
    output: dict[str, Any] = sample["output"] if isinstance(sample.get("output"), dict) else {}
    choices = output.get("choices") or [{}]
    correct = value >= threshold
    answer = score.get("answer")
    return {"model": label, "problem_id": str(sample["id"]), "sample_index": epoch - 1,
            "prompt": sample.get("input") if isinstance(sample.get("input"), str) else None,
            "response": output.get("completion") if isinstance(output.get("completion"), str) else "",
            "correct": correct, "verifier": f"inspect:{scorer}", "reason": "correct" if correct else "wrong",
            "extracted_answer": None if answer is None else str(answer), "answer": _text(sample.get("target")),
            "finish_reason": choices[0].get("stop_reason") if isinstance(choices[0], dict) else None,
            "source": where}


def iter_inspect(paths: Paths, *, model: Optional[str] = None, scorer: Optional[str] = None, threshold: float = 1.0,
                 batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """IMPORT_SCHEMA batches, one row per scored sample epoch (streamed: one sample in memory)."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    files = as_paths(paths)

    def rows() -> Iterator[dict[str, Any]]:
        seen: dict[tuple[str, str], set[int]] = {}
        facts: dict[tuple[str, str], tuple[Any, Any]] = {}
        for path in files:
            log = _Log(path)
            label = model or label_of(str(log.eval.get("model") or "inspect"))
            name, scored = None, 0
            for where, sample in log.samples():
                if not isinstance(sample, dict):
                    raise ValueError(f"{where}: expected a sample object")
                name = name or _scorer(log, scorer, sample, where)
                row = _row(sample, where, label, name, float(threshold))
                if row is None:
                    continue
                _check_epoch(log, seen, facts, sample, row, where)
                scored += 1
                yield row
            if not scored:
                raise ValueError(f"{path}: no scored samples{f' for scorer {name!r}' if name else ''}: nothing to "
                                 "import (the run stopped before scoring, or the scorer gave no values)")

    return batched(rows(), batch_rows)


def _check_epoch(log: _Log, seen: dict[tuple[str, str], set[int]], facts: dict[tuple[str, str], tuple[Any, Any]],
                 sample: dict[str, Any], row: dict[str, Any], where: str) -> None:
    """Epochs of one sample must agree: each epoch once, within the log's epochs, the same input and target."""
    key = (row["model"], row["problem_id"])
    epoch = row["sample_index"] + 1
    if log.epochs is not None and epoch > log.epochs:
        raise ValueError(f"{where}: epoch {epoch} of sample {row['problem_id']!r} beyond the log's {log.epochs} epochs")
    if epoch in seen.setdefault(key, set()):
        raise ValueError(f"{where}: sample {row['problem_id']!r} epoch {epoch} appears twice (model {row['model']!r}); "
                         "two logs of the same run? import them under different --model labels")
    seen[key].add(epoch)
    fact = (_digest(sample.get("input")), _digest(sample.get("target")))
    if facts.setdefault(key, fact) != fact:
        raise ValueError(f"{where}: epochs of sample {row['problem_id']!r} disagree: another epoch has a different "
                         "input or target")


def _digest(value: Any) -> str:
    return hashlib.sha1(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def read_inspect(paths: Paths, *, model: Optional[str] = None, scorer: Optional[str] = None, threshold: float = 1.0,
                 batch_rows: int = BATCH_ROWS) -> pa.Table:
    """Inspect logs (``.eval`` or ``.json``) as one IMPORT_SCHEMA table."""
    return to_table(iter_inspect(paths, model=model, scorer=scorer, threshold=threshold, batch_rows=batch_rows))
