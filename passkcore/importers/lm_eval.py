"""lm-evaluation-harness ``--log_samples`` files: ``samples_<task>_<date>.jsonl``.

One line per (document, filter), written by ``lm_eval/evaluator.py`` (read in lm-eval 0.4.13):
``doc_id``, ``doc``, ``target``, ``arguments`` (a list of request arguments ``[prompt, gen_kwargs]``;
older releases: ``{"gen_args_0": {"arg_0": prompt, "arg_1": gen_kwargs}}``), ``resps`` (per request
the list of responses: with ``repeats: N``, ``[[r1, ..., rN]]``), ``filtered_resps``, ``filter``,
``metrics`` and one key per metric value. A metric value is per document (exact_match with repeats: the
mean over the N filtered responses), never a verdict per response, so per-sample verdicts are recomputed:

- ``verify="math"`` (default): each raw response checked by math-verify against ``target``
  (``passkcore.verify.verify_rows`` at import);
- ``verify="filtered"``: the task's own answer extraction, ``filtered_resps[0][i] == target`` (needs a
  filter that keeps all N responses, e.g. a regex filter without ``take_first``).

Only the lines of one filter are read (the first one in the file, or ``filter_name``): every filter's line
repeats the same raw responses.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Optional

import pyarrow as pa

from passkcore.importers.common import BATCH_ROWS, Paths, as_paths, batched, to_table
from passkcore.jsonio import jsonl_objects

VERIFY_MODES = ("math", "filtered")


def _prompt(arguments: Any, where: str) -> Optional[str]:
    if isinstance(arguments, dict):  # lm-eval <= 0.4.3: {"gen_args_0": {"arg_0": prompt, ...}}
        first = arguments.get("gen_args_0")
        return first.get("arg_0") if isinstance(first, dict) else None
    if isinstance(arguments, list) and arguments:
        first = arguments[0]
        if isinstance(first, list) and first and isinstance(first[0], str):
            return first[0]
    raise ValueError(f"{where}: field 'arguments' holds no prompt (expected [[prompt, gen_kwargs]])")


def _responses(resps: Any, where: str) -> list[str]:
    if not isinstance(resps, list) or len(resps) != 1 or not isinstance(resps[0], list):
        raise ValueError(f"{where}: field 'resps' must hold one generation request's responses [[r1, ..., rN]] "
                         f"(a generate_until task); got {len(resps) if isinstance(resps, list) else type(resps)} requests")
    if not all(isinstance(r, str) for r in resps[0]):
        raise ValueError(f"{where}: field 'resps' holds non-text responses (a loglikelihood task?)")
    return resps[0]


def _target(target: Any, where: str) -> str:
    if isinstance(target, list):
        if len(target) != 1:
            raise ValueError(f"{where}: field 'target' lists {len(target)} answers; passkcore needs one")
        target = target[0]
    if target is None or isinstance(target, (dict, bool)):
        raise ValueError(f"{where}: field 'target' must be an answer, got {target!r}")
    return str(target)


def _filtered(filtered: Any, n: int, where: str) -> list[str]:
    items = filtered[0] if isinstance(filtered, list) and len(filtered) == 1 else None
    if not isinstance(items, list) or len(items) != n:
        raise ValueError(f"{where}: field 'filtered_resps' does not keep one answer per response ({n}); this "
                         "filter reduces them (take_first, majority vote): use verify='math'")
    return [str(x) for x in items]


def lm_eval_rows(line: dict[str, Any], where: str, model: str, verify: str, id_field: Optional[str]) -> list[dict[str, Any]]:
    """The IMPORT_SCHEMA rows of one log line."""
    if "doc_id" not in line:
        raise ValueError(f"{where}: missing field 'doc_id' (not an lm-eval --log_samples file?)")
    doc: dict[str, Any] = line["doc"] if isinstance(line.get("doc"), dict) else {}
    if id_field is not None:
        if doc.get(id_field) is None:
            raise ValueError(f"{where}: doc has no field {id_field!r} (fields: {', '.join(sorted(doc))})")
        pid = str(doc[id_field])
    else:
        pid = str(line["doc_id"])
    prompt = _prompt(line.get("arguments"), where)
    responses = _responses(line.get("resps"), where)
    target = _target(line.get("target"), where)
    verdicts: list[Optional[bool]] = [None] * len(responses)
    if verify == "filtered":
        verdicts = [f.strip() == target.strip() for f in _filtered(line.get("filtered_resps"), len(responses), where)]
    return [{"model": model, "problem_id": pid, "sample_index": i, "prompt": prompt, "response": r,
             "correct": verdicts[i], "verifier": "lm-eval-filter" if verdicts[i] is not None else None,
             "reason": None if verdicts[i] is None else ("correct" if verdicts[i] else "wrong"),
             "answer": target, "source": where} for i, r in enumerate(responses)]


def iter_lm_eval(paths: Paths, *, model: Optional[str] = None, verify: str = "math", filter_name: Optional[str] = None,
                 id_field: Optional[str] = None, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """IMPORT_SCHEMA batches from lm-eval sample logs (streamed line by line)."""
    if verify not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {', '.join(VERIFY_MODES)}, got {verify!r}")
    files = as_paths(paths)

    def rows() -> Iterator[dict[str, Any]]:
        chosen = filter_name
        for path in files:
            label = model or "lm-eval"
            for where, line in jsonl_objects(path):
                chosen = chosen if chosen is not None else line.get("filter")
                if line.get("filter") != chosen:
                    continue
                yield from lm_eval_rows(line, where, label, verify, id_field)

    return batched(rows(), batch_rows)


def read_lm_eval(paths: Paths, *, model: Optional[str] = None, verify: str = "math", filter_name: Optional[str] = None,
                 id_field: Optional[str] = None, batch_rows: int = BATCH_ROWS) -> pa.Table:
    """lm-eval ``--log_samples`` JSONL as one IMPORT_SCHEMA table (``correct`` null with ``verify="math"``:
    the import verifies those rows against ``answer``)."""
    return to_table(iter_lm_eval(paths, model=model, verify=verify, filter_name=filter_name, id_field=id_field,
                                 batch_rows=batch_rows))
