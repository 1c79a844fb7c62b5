"""The RLVR paper's math evaluation output (LeapLabTHU/limit-of-RLVR, ``math/examples/math_eval``):
``<bench>/test_<template>_-1_seed<S>_t<T>_s0_e-1.jsonl``.

One JSON line per problem, written by ``math_eval.py`` and scored by ``evaluate.py``: ``idx`` (the
problem's position in the benchmark file, or its ``idx`` field), ``question``, ``gt_cot``, ``gt``,
``prompt`` (the templated prompt), ``code[n]`` (the n responses), ``pred[n]`` (extracted answers),
``report[n]``, ``finish_reason[n]`` and ``score[n]`` (bool per sample). Several seeds are separate files:
give them all, in order; a problem's samples are numbered across them. The paper's pass@k script pads a
problem with fewer scores by repeating its last one; passkcore does not pad (n is what was sampled).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Optional

import pyarrow as pa

from passkcore.importers.common import BATCH_ROWS, Paths, as_bool, as_paths, batched, to_table
from passkcore.jsonio import jsonl_objects


def line_rows(line: dict[str, Any], where: str, label: str, first: int) -> list[dict[str, Any]]:
    for name in ("idx", "code", "score"):
        if name not in line:
            raise ValueError(f"{where}: missing field {name!r}")
    code, score = line["code"], line["score"]
    if not isinstance(code, list) or not isinstance(score, list) or len(code) != len(score):
        raise ValueError(f"{where}: fields 'code' and 'score' must be lists of the same length "
                         f"({len(code) if isinstance(code, list) else code!r} vs "
                         f"{len(score) if isinstance(score, list) else score!r})")
    preds: list[Any] = line["pred"] if isinstance(line.get("pred"), list) else [None] * len(code)
    finish: list[Any] = line["finish_reason"] if isinstance(line.get("finish_reason"), list) else [None] * len(code)
    prompt = line.get("question") if isinstance(line.get("question"), str) else None
    answer = None if line.get("gt") is None else str(line["gt"])
    rows = []
    for i, (text, ok) in enumerate(zip(code, score)):
        correct = as_bool(ok, f"{where}: score[{i}]", "score")
        rows.append({"model": label, "problem_id": str(line["idx"]), "sample_index": first + i, "prompt": prompt,
                     "response": str(text), "correct": correct, "verifier": "rlvr-math-eval",
                     "reason": "correct" if correct else "wrong", "answer": answer,
                     "finish_reason": None if i >= len(finish) or finish[i] is None else str(finish[i]),
                     "extracted_answer": None if i >= len(preds) or preds[i] is None else str(preds[i]),
                     "source": f"{where}: sample {i}"})
    return rows


def iter_rlvr(paths: Paths, *, model: Optional[str] = None, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """IMPORT_SCHEMA batches; the files' samples of one problem are numbered on in file order."""
    label = model or "rlvr"

    def rows() -> Iterator[dict[str, Any]]:
        taken: dict[str, int] = {}  # samples seen per problem: one small int per problem
        for path in as_paths(paths):
            for where, line in jsonl_objects(path):
                made = line_rows(line, where, label, taken.get(str(line.get("idx")), 0))
                taken[str(line["idx"])] = taken.get(str(line["idx"]), 0) + len(made)
                yield from made

    return batched(rows(), batch_rows)


def read_rlvr(paths: Paths, *, model: Optional[str] = None, batch_rows: int = BATCH_ROWS) -> pa.Table:
    """The paper's per-problem JSONL as one IMPORT_SCHEMA table."""
    return to_table(iter_rlvr(paths, model=model, batch_rows=batch_rows))
