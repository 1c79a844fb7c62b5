"""OpenCompass results and predictions of a dataset evaluated with ``n`` repeats.

Read in opencompass 0.5.4:

- ``datasets/base.py`` (``BaseDataset``): with ``n`` the test set is the dataset concatenated n times;
  copy r holds indices ``[r*N, (r+1)*N)``, each example tagged ``subdivision`` (the dataset abbr) and
  ``idx`` (its index in the dataset).
- ``tasks/openicl_eval.py`` (``_load_predictions``): ``predictions/<model>/<abbr>.json`` is an object
  keyed ``"0" .. "N*n-1"`` (``origin_prompt``, ``prediction``, ``gold``), or split into ``<abbr>_0.json``,
  ``<abbr>_1.json``, ... each keyed from ``"0"`` and concatenated in order.
- ``openicl/icl_evaluator/icl_base_evaluator.py`` (``BaseEvaluator.evaluate``): ``results/<model>/
  <abbr>.json`` keeps ``details``, one entry per example in dataset order, ``example_abbr`` =
  ``<subdivision>_<idx>``, and every per-replica detail key flattened into a list of n values; the
  verdict is ``correct`` (else ``is_correct``, else ``cascade_correct``), as OpenCompass's own G-Pass@k.

Give the results file and, for the response texts, its predictions file(s): ``passk import opencompass
results/M/D.json predictions/M/D.json``. Problem id: ``idx``; the model label defaults to the results
file's folder (``<model>``). Without a predictions file the responses are empty (counts only).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pyarrow as pa

from passkcore.importers.common import BATCH_ROWS, Paths, as_bool, as_paths, batched, to_table
from passkcore.importers.jsondoc import first_key, items, kv_items, label_of

VERDICT_KEYS = ("correct", "is_correct", "cascade_correct")
_PART = re.compile(r"^(?P<stem>.+)_(?P<part>\d+)$")


class _Problem:
    __slots__ = ("pid", "verdicts", "preds", "gold", "answer")

    def __init__(self, pid: str, verdicts: list[bool], preds: list[Optional[str]], answer: Optional[str]) -> None:
        self.pid, self.verdicts, self.preds, self.answer = pid, verdicts, preds, answer
        self.gold: Optional[str] = None


def _detail(detail: Any, where: str) -> _Problem:
    if not isinstance(detail, dict) or not isinstance(detail.get("example_abbr"), str):
        raise ValueError(f"{where}: expected a detail with 'example_abbr' (a results file written with n repeats)")
    key = next((k for k in VERDICT_KEYS if detail.get(k) is not None), None)
    if key is None:
        raise ValueError(f"{where}: no per-sample verdict ({', '.join(VERDICT_KEYS)}) in this detail; the evaluator "
                         "keeps none")
    raw = detail[key] if isinstance(detail[key], list) else [detail[key]]
    verdicts = [as_bool(v, f"{where}: {key}[{r}]", key) for r, v in enumerate(raw)]
    preds: list[Any] = detail["pred"] if isinstance(detail.get("pred"), list) else [None] * len(verdicts)
    pid = detail["example_abbr"].rsplit("_", 1)[-1]
    answers: list[Any] = detail["answer"] if isinstance(detail.get("answer"), list) else []
    answer = _gold(answers[0]) if answers and all(a == answers[0] for a in answers) else None
    return _Problem(pid, verdicts, [None if p is None else str(p) for p in preds], answer)


def _results(path: Path) -> list[_Problem]:
    """The per-example verdicts (small: n booleans and extracted answers per problem)."""
    problems = [_detail(d, f"{path}: details[{j}]") for j, d in enumerate(items(path, "details.item", "detail"))]
    if not problems:
        raise ValueError(f"{path}: no 'details' (run OpenCompass with dump_details, and n repeats)")
    n = len(problems[0].verdicts)
    for j, p in enumerate(problems):
        if len(p.verdicts) != n:
            raise ValueError(f"{path}: details[{j}] (problem {p.pid!r}) has {len(p.verdicts)} replicas, details[0] {n}: "
                             "the repeats disagree")
    return problems


def _split(files: list[Path]) -> tuple[list[Path], dict[str, list[Path]]]:
    """Results files, and predictions files by dataset abbr (a split file's parts in order)."""
    results, parts = [], []
    for path in files:
        key = first_key(path)
        if isinstance(key, str) and key.isdigit():
            parts.append(path)
        else:
            results.append(path)
    if not results:
        raise ValueError("no OpenCompass results file (with 'details') among the inputs")
    stems = {r.stem for r in results}
    preds: dict[str, list[tuple[int, Path]]] = {}
    for path in parts:
        m = _PART.match(path.stem)
        stem, part = (path.stem, -1) if path.stem in stems or m is None else (m.group("stem"), int(m.group("part")))
        if stem not in stems:
            raise ValueError(f"{path}: a predictions file of dataset {stem!r}, whose results file is not given")
        preds.setdefault(stem, []).append((part, path))
    return results, {s: [p for _, p in sorted(v)] for s, v in preds.items()}


def _gold(value: Any) -> Optional[str]:
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


def _rows(path: Path, label: str, predictions: list[Path]) -> Iterator[dict[str, Any]]:
    problems = _results(path)
    size, n = len(problems), len(problems[0].verdicts)
    if not predictions:
        for r in range(n):
            for j, p in enumerate(problems):
                p.gold = p.answer  # the evaluator's reference answer
                yield _row(label, p, r, f"{path}: details[{j}] replica {r}", None, None)
        return
    i = 0
    for part in predictions:
        for key, entry in kv_items(part, "", "prediction"):
            where = f"{part}: entry {key!r}"
            if i >= size * n:
                raise ValueError(f"{where}: more predictions than the results' {size} problems x {n} replicas")
            if not isinstance(entry, dict) or "prediction" not in entry:
                raise ValueError(f"{where}: expected an object with 'prediction'")
            p, r = problems[i % size], i // size
            gold = _gold(entry.get("gold"))
            if r == 0:
                p.gold = gold
            elif gold != p.gold:
                raise ValueError(f"{where}: replica {r} of problem {p.pid!r} has gold {gold!r}, replica 0 {p.gold!r}: "
                                 "the predictions do not match the results' layout")
            yield _row(label, p, r, where, entry.get("prediction"), entry.get("origin_prompt"))
            i += 1
    if i != size * n:
        raise ValueError(f"{predictions[-1]}: {i} predictions for {size} problems x {n} replicas in {path}")


def _row(label: str, p: _Problem, r: int, where: str, text: Any, prompt: Any) -> dict[str, Any]:
    correct = p.verdicts[r]
    return {"model": label, "problem_id": p.pid, "sample_index": r, "prompt": prompt if isinstance(prompt, str) else None,
            "response": text if isinstance(text, str) else "", "correct": correct, "verifier": "opencompass",
            "reason": "correct" if correct else "wrong", "extracted_answer": p.preds[r] if r < len(p.preds) else None,
            "answer": p.gold, "source": where}


def iter_opencompass(paths: Paths, *, model: Optional[str] = None, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """IMPORT_SCHEMA batches: each results file's problems, with its predictions' texts when given."""
    files = as_paths(paths)

    def rows() -> Iterator[dict[str, Any]]:
        results, preds = _split(files)
        for path in results:
            yield from _rows(path, model or label_of(path.resolve().parent.name), preds.get(path.stem, []))

    return batched(rows(), batch_rows)


def read_opencompass(paths: Paths, *, model: Optional[str] = None, batch_rows: int = BATCH_ROWS) -> pa.Table:
    """OpenCompass results (+ predictions) as one IMPORT_SCHEMA table."""
    return to_table(iter_opencompass(paths, model=model, batch_rows=batch_rows))
