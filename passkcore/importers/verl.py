"""verl validation and rollout dumps: ``{step}.jsonl`` under ``trainer.validation_data_dir`` (or
``trainer.rollout_data_dir``), one file per step.

Written by ``RayPPOTrainer._write_generations`` (read in verl 0.9.1, ``verl/trainer/ppo/ray_trainer.py``):
one JSON line per sample with ``input`` (the decoded prompt), ``output`` (the decoded response),
``gts`` (the ground truth), ``score`` (the summed token-level reward), ``step`` (the global step), and
every reward-extra key with one value per sample (``reward``; ``acc`` and ``pred`` from rewards that
return them, e.g. math_dapo). Validation repeats each prompt ``val_kwargs.n`` times (interleaved); no
uid is dumped, so samples are grouped into problems by their ``input`` text: a problem's id is a
digest of it (``v`` + 16 hex digits), the same in every step's file.

Each step goes under the label ``<model>-step<step>`` (model default ``verl``): the report finds the
checkpoint series from the labels with no flag. correct = ``acc`` where the line has it, else
``score >= threshold`` (default 1.0, for 0/1 rewards).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from typing import Any, Optional

import pyarrow as pa

from passkcore.importers.common import BATCH_ROWS, Paths, as_bool, as_paths, batched, need, to_table
from passkcore.jsonio import jsonl_objects


def problem_id(text: str) -> str:
    """The problem id of a prompt text: ``v`` + the first 16 hex digits of its SHA-256."""
    return "v" + hashlib.sha256(text.encode()).hexdigest()[:16]


def note(threshold: float = 1.0) -> str:
    """How c is recovered, for the import note."""
    return f"verl: correct = the dump's acc where a line has it, else score >= {threshold:g}"


def _answer(gts: Any) -> Optional[str]:
    if gts is None:
        return None
    if isinstance(gts, (str, int, float)) and not isinstance(gts, bool):
        return str(gts)
    return json.dumps(gts, sort_keys=True, ensure_ascii=False)


def _correct(line: dict[str, Any], where: str, threshold: float) -> tuple[bool, str]:
    if line.get("acc") is not None:
        return as_bool(line["acc"], where, "acc"), "verl-acc"
    score = need(line, "score", where, (int, float))
    if not math.isfinite(score):
        raise ValueError(f"{where}: field 'score' must be finite, got {score!r}")
    return score >= threshold, f"verl-score>={threshold:g}"


def line_row(line: dict[str, Any], where: str, prefix: str, threshold: float) -> dict[str, Any]:
    """One IMPORT_SCHEMA row (sample_index filled in by the caller)."""
    for name in ("input", "output", "step"):
        if name not in line:
            raise ValueError(f"{where}: missing field {name!r} (not a verl generations dump?)")
    text = need(line, "input", where, str)
    output = need(line, "output", where, str)
    step = need(line, "step", where, int)
    correct, verifier = _correct(line, where, threshold)
    pred = line.get("pred")
    return {"model": f"{prefix}-step{step}", "problem_id": problem_id(text), "prompt": text, "response": output,
            "correct": correct, "verifier": verifier, "reason": "correct" if correct else "wrong",
            "extracted_answer": None if pred is None else str(pred), "answer": _answer(line.get("gts")),
            "source": where}


def iter_verl(paths: Paths, *, model: Optional[str] = None, threshold: float = 1.0,
              batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """IMPORT_SCHEMA batches, a problem's samples numbered in file order; one step per file."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    prefix = model or "verl"
    files = as_paths(paths)

    def rows() -> Iterator[dict[str, Any]]:
        steps: dict[str, str] = {}  # label -> the file that holds it
        for path in files:
            taken: dict[str, int] = {}
            label = None
            for where, line in jsonl_objects(path):
                row = line_row(line, where, prefix, float(threshold))
                if label is None:
                    label = row["model"]
                    if label in steps:
                        raise ValueError(f"{where}: step {line['step']} is also in {steps[label]}; import validation "
                                         "and rollout dumps (or two runs) under different --model names")
                    steps[label] = str(path)
                elif row["model"] != label:
                    raise ValueError(f"{where}: step {line['step']} in a file of {label}; verl writes one step per file")
                row["sample_index"] = taken.get(row["problem_id"], 0)
                taken[row["problem_id"]] = row["sample_index"] + 1
                yield row

    return batched(rows(), batch_rows)


def read_verl(paths: Paths, *, model: Optional[str] = None, threshold: float = 1.0,
              batch_rows: int = BATCH_ROWS) -> pa.Table:
    """verl dumps as one IMPORT_SCHEMA table."""
    return to_table(iter_verl(paths, model=model, threshold=threshold, batch_rows=batch_rows))
