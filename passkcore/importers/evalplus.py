"""evalplus ``eval_results.json`` (``<samples>.eval_results.json``; older ``_eval_results.json``).

Written by ``evalplus/evaluate.py``: ``{"date", "hash", "eval": {task_id: [{"task_id", "solution",
"base_status", "plus_status", "base_fail_tests", "plus_fail_tests"}, ...]}, "pass_at_k": ...}``, each
task's samples sorted by completion id; a status is ``"pass"``, ``"fail"``, ``"timeout"`` or null
(``plus_status`` is null when evaluated with ``--base-only``). evalplus itself counts a sample correct on
the plus set when ``base_status == plus_status == "pass"``, on the base set when ``base_status ==
"pass"``: ``tests="plus"`` (default) or ``"base"``.

The file is one JSON document (read whole: evalplus writes it whole, a few MB per 100 samples per
task); rows are then yielded in batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Optional

import pyarrow as pa

from passkcore.importers.common import BATCH_ROWS, Paths, as_paths, batched, to_table
from passkcore.jsonio import read_json

STATUSES = ("pass", "fail", "timeout", None)


def _verdict(sample: dict[str, Any], tests: str, where: str) -> tuple[bool, str]:
    for key in ("base_status", "plus_status"):
        if sample.get(key) not in STATUSES:
            raise ValueError(f"{where}: field {key!r} must be pass, fail, timeout or null, got {sample.get(key)!r}")
    base, plus = sample.get("base_status"), sample.get("plus_status")
    if tests == "plus":
        if plus is None and base is not None:
            raise ValueError(f"{where}: no plus_status (evaluated with --base-only?): use tests='base'")
        ok = base == "pass" and plus == "pass"
        reason = "correct" if ok else (base if base != "pass" else plus) or "unknown"
    else:
        ok = base == "pass"
        reason = "correct" if ok else base or "unknown"
    return ok, "wrong" if reason == "fail" else reason


def iter_evalplus(paths: Paths, *, model: Optional[str] = None, tests: str = "plus",
                  batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """IMPORT_SCHEMA batches, one row per evaluated sample, verdict from the chosen test set."""
    if tests not in ("plus", "base"):
        raise ValueError(f"tests must be 'plus' or 'base', got {tests!r}")
    label = model or "evalplus"

    def rows() -> Iterator[dict[str, Any]]:
        for path in as_paths(paths):
            data = read_json(path)
            if not isinstance(data, dict) or not isinstance(data.get("eval"), dict):
                raise ValueError(f"{path}: missing field 'eval' (not an evalplus eval_results.json?)")
            for task_id, samples in data["eval"].items():
                if not isinstance(samples, list):
                    raise ValueError(f"{path}: eval[{task_id!r}] must be a list of samples")
                for i, sample in enumerate(samples):
                    where = f"{path}: eval[{task_id!r}][{i}]"
                    if not isinstance(sample, dict) or not isinstance(sample.get("solution"), str):
                        raise ValueError(f"{where}: missing field 'solution'")
                    ok, reason = _verdict(sample, tests, where)
                    yield {"model": label, "problem_id": str(task_id), "sample_index": i, "prompt": None,
                           "response": sample["solution"], "correct": ok, "verifier": f"evalplus-{tests}",
                           "reason": reason, "source": where}

    return batched(rows(), batch_rows)


def read_evalplus(paths: Paths, *, model: Optional[str] = None, tests: str = "plus",
                  batch_rows: int = BATCH_ROWS) -> pa.Table:
    """evalplus eval results as one IMPORT_SCHEMA table."""
    return to_table(iter_evalplus(paths, model=model, tests=tests, batch_rows=batch_rows))
