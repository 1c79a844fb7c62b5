"""EvalScope review files: ``outputs/<time>/reviews/<model>/<benchmark>_<subset>.jsonl``.

Read in evalscope 1.14.1 (``api/evaluator/cache.py``: ``ReviewResult``, ``save_review_cache``;
``api/metric/scorer.py``: ``Score``, ``SampleScore``; ``api/dataset/loader.py``: ``repeat_samples``,
``reindex``): one JSON line per generation with ``index`` (the sample id), ``target`` (accepted answers),
``messages`` (the chat, user turn first) and ``sample_score``: ``{"score": {"value": {metric: value},
"status", "prediction", "extracted_prediction", "main_score_name"}, "sample_id", "group_id",
"generation_index"}``. With ``repeats: N`` each question is copied N times in a row, so ``group_id`` =
sample id // N is the question and ``generation_index`` = sample id % N the repeat.

Problem id: ``<file stem>/<group_id>`` (a benchmark's subsets are separate files). The verdict is the
score's main value (``main_score_name``, else its first metric; ``scorer`` picks another metric):
correct = value >= ``threshold`` (default 1.0). A score whose status is not ``success`` or ``fallback``
(a failed judge, an excluded sample) drops out, as it drops out of EvalScope's own aggregation. The
model label defaults to the reviews folder the file sits in (``<model>``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pyarrow as pa

from passkcore.importers.common import BATCH_ROWS, Paths, as_paths, batched, need, to_table
from passkcore.importers.jsondoc import label_of
from passkcore.jsonio import jsonl_objects

USABLE = ("success", "fallback")


def _value(score: dict[str, Any], metric: Optional[str], where: str) -> Any:
    values = score.get("value")
    if not isinstance(values, dict) or not values:
        raise ValueError(f"{where}: sample_score.score.value holds no metric values")
    name = metric or score.get("main_score_name") or next(iter(values))
    if name not in values:
        raise ValueError(f"{where}: no metric {name!r} in the score (metrics: {', '.join(values)})")
    value = values[name]
    if isinstance(value, bool):
        return float(value)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}: metric {name!r} must be a finite number, got {value!r}")
    return float(value)


def _prompt(messages: Any) -> Optional[str]:
    if isinstance(messages, list):
        for m in messages:
            if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
                return m["content"]
    return None


def review_row(line: dict[str, Any], where: str, label: str, stem: str, metric: Optional[str],
               threshold: float) -> Optional[dict[str, Any]]:
    """The IMPORT_SCHEMA row of one review line, or None where its score is unusable."""
    sample = need(line, "sample_score", where, dict)
    score = need(sample, "score", f"{where}: sample_score", dict)
    if score.get("status", "success") not in USABLE:
        return None
    group = sample.get("group_id")
    index = sample.get("generation_index")
    if group is None or isinstance(group, bool) or not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise ValueError(f"{where}: sample_score needs group_id and generation_index (a run with repeats; got "
                         f"{group!r}, {index!r})")
    correct = _value(score, metric, where) >= threshold
    target = line.get("target")
    extracted = score.get("extracted_prediction")
    return {"model": label, "problem_id": f"{stem}/{group}", "sample_index": index, "prompt": _prompt(line.get("messages")),
            "response": score.get("prediction") if isinstance(score.get("prediction"), str) else "",
            "correct": correct, "verifier": "evalscope", "reason": "correct" if correct else "wrong",
            "extracted_answer": None if extracted is None else str(extracted),
            "answer": target[0] if isinstance(target, list) and len(target) == 1 and isinstance(target[0], str) else None,
            "source": where}


def iter_evalscope(paths: Paths, *, model: Optional[str] = None, scorer: Optional[str] = None, threshold: float = 1.0,
                   batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """IMPORT_SCHEMA batches from review JSONL files (streamed line by line)."""
    files = as_paths(paths)

    def rows() -> Iterator[dict[str, Any]]:
        seen: dict[tuple[str, str], set[int]] = {}
        for path in files:
            label = model or label_of(Path(path).resolve().parent.name)
            for where, line in jsonl_objects(path):
                row = review_row(line, where, label, Path(path).stem, scorer, float(threshold))
                if row is None:
                    continue
                got = seen.setdefault((label, row["problem_id"]), set())
                if row["sample_index"] in got:
                    raise ValueError(f"{where}: question {row['problem_id']!r} generation {row['sample_index']} appears "
                                     "twice (the same file given twice, or a rerun appended?)")
                got.add(row["sample_index"])
                yield row

    return batched(rows(), batch_rows)


def read_evalscope(paths: Paths, *, model: Optional[str] = None, scorer: Optional[str] = None, threshold: float = 1.0,
                   batch_rows: int = BATCH_ROWS) -> pa.Table:
    """EvalScope reviews as one IMPORT_SCHEMA table."""
    return to_table(iter_evalscope(paths, model=model, scorer=scorer, threshold=threshold, batch_rows=batch_rows))
