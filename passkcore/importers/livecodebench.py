"""LiveCodeBench ``Scenario.codegeneration_<n>_<temperature>_eval_all.json``.

Written by ``lcb_runner/runner/main.py`` from ``CodeGenerationProblem.insert_output_evaluation``
(``lcb_runner/benchmarks/code_generation.py``): a JSON list, one object per problem with
``question_id``, ``question_title``, ``question_content``, ``platform``, ``contest_id``, ``contest_date``,
``starter_code``, ``difficulty``, ``output_list[n]`` (raw model outputs), ``code_list[n]`` (extracted
programs), ``graded_list[n]`` (bool per sample: passed every test), ``pass@1`` and ``metadata[n]``.
The verdict of sample i is ``graded_list[i]``; its response is ``output_list[i]`` (the model's text).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Optional

import pyarrow as pa

from passkcore.importers.common import BATCH_ROWS, Paths, as_bool, as_paths, batched, to_table
from passkcore.jsonio import read_json


def problem_rows(problem: Any, where: str, label: str) -> list[dict[str, Any]]:
    if not isinstance(problem, dict):
        raise ValueError(f"{where}: expected an object")
    for name in ("question_id", "graded_list"):
        if name not in problem:
            raise ValueError(f"{where}: missing field {name!r}")
    graded = problem["graded_list"]
    texts = problem.get("output_list") or problem.get("code_list")
    if not isinstance(graded, list) or not isinstance(texts, list) or len(texts) != len(graded):
        raise ValueError(f"{where}: field 'graded_list' ({len(graded) if isinstance(graded, list) else graded!r}) and "
                         f"'output_list' must be lists of the same length")
    prompt = problem.get("question_content")
    if prompt and problem.get("starter_code"):
        prompt = f"{prompt}\n\n{problem['starter_code']}"
    rows = []
    for i, (text, ok) in enumerate(zip(texts, graded)):
        correct = as_bool(ok, f"{where}: graded_list[{i}]", "graded_list")
        rows.append({"model": label, "problem_id": str(problem["question_id"]), "sample_index": i, "prompt": prompt,
                     "response": str(text), "correct": correct, "verifier": "livecodebench",
                     "reason": "correct" if correct else "wrong", "source": f"{where}: sample {i}"})
    return rows


def iter_livecodebench(paths: Paths, *, model: Optional[str] = None,
                       batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """IMPORT_SCHEMA batches, one row per graded sample."""
    label = model or "livecodebench"

    def rows() -> Iterator[dict[str, Any]]:
        for path in as_paths(paths):
            data = read_json(path)
            if not isinstance(data, list):
                raise ValueError(f"{path}: expected a JSON list of problems (an *_eval_all.json file)")
            for j, problem in enumerate(data):
                yield from problem_rows(problem, f"{path}: entry {j}", label)

    return batched(rows(), batch_rows)


def read_livecodebench(paths: Paths, *, model: Optional[str] = None, batch_rows: int = BATCH_ROWS) -> pa.Table:
    """LiveCodeBench eval_all results as one IMPORT_SCHEMA table."""
    return to_table(iter_livecodebench(paths, model=model, batch_rows=batch_rows))
