"""lighteval details Parquet: ``details/<model>/<date>/details_<task>|<fewshot>_<date>.parquet``.

One row per document, ``Dataset.from_list([asdict(Detail), ...]).to_parquet`` in
``EvaluationTracker`` (``src/lighteval/logging/info_loggers.py``, read at v0.10.0 and v0.13.0):

- v0.11 and later: ``doc`` (struct of ``Doc``: ``query``, ``choices``, ``gold_index``, ``id``,
  ``task_name``, ``num_samples``, ...), ``model_response`` (struct of ``ModelResponse``: ``input``,
  ``text`` (one string per sample), ``input_tokens``, ``output_tokens``, ...), ``metric`` (name ->
  value). ``doc.id`` is the row's index in the evaluation split (``LightevalTask`` overwrites it), and
  ``model_response.input`` is null from the transformers backend (vLLM and endpoints keep the context):
  the prompt is then ``doc.query``, without the chat template the stack applied;
- v0.10 and earlier: flat columns ``example`` (``doc.query``), ``full_prompt`` (``doc.ctx``),
  ``predictions`` (one list per request, flattened when a request returned n samples), ``gold``
  (``doc.get_golds()``), ``choices``, ``gold_index``, ``metrics``, ``specifics`` (``doc.specific``),
  ... No document id: ``specifics.id`` where a task put one, else the row position.

Token ids are not imported: 0.13's ``input_tokens``/``output_tokens`` are the padded batch tensors
(in the real run of tests/fixtures/lighteval every output is 48 ids padded with ``<|im_end|>``, and a
prompt cut to 48), so scoring tokenizes the texts instead.

lighteval stores per-document metrics only, never a verdict per sample. Two ways back to counts:

- the texts (default): each sample's text is verified by math-verify against the gold answer
  (``doc.choices[gold_index]``, older files ``gold``) at import, giving samples with verdicts;
- ``metric=NAME``: a per-document mean over the n samples (``avg@n:n=N``, ``pass@k:k=1&n=N``) gives
  ``c = value * n``, checked to be a whole number: counts only (``read_lighteval_counts``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Optional

import pyarrow as pa
import pyarrow.parquet as pq

from passkcore.importers.common import BATCH_ROWS, COUNTS, Paths, as_paths, batched, to_table


def _struct(value: Any) -> dict[str, Any]:
    if isinstance(value, str):  # some writers keep nested fields as JSON strings
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return {}
    return value if isinstance(value, dict) else {}


def _gold(choices: Any, gold_index: Any, where: str) -> Optional[str]:
    if isinstance(gold_index, list):
        gold_index = gold_index[0] if gold_index else None
    if isinstance(choices, list) and isinstance(gold_index, int) and 0 <= gold_index < len(choices):
        return str(choices[gold_index])
    return None


def _texts(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    texts: list[str] = []
    for item in value:  # older files nest one list per request: [[t1, ..., tn]]
        texts.extend(_texts(item) if isinstance(item, list) else [str(item)])
    return texts


def document(record: dict[str, Any], where: str, position: int) -> dict[str, Any]:
    """(problem id, prompt, texts, gold, metrics) of one details row, current or older layout."""
    if "doc" in record or "model_response" in record:
        doc, response = _struct(record.get("doc")), _struct(record.get("model_response"))
        metrics = _struct(record.get("metric"))
        pid = doc.get("id") or str(position)
        prompt = response.get("input") if isinstance(response.get("input"), str) else doc.get("query")
        texts = _texts(response.get("text"))
        gold = _gold(doc.get("choices"), doc.get("gold_index"), where)
    elif "predictions" in record or "example" in record:
        metrics = _struct(record.get("metrics"))
        specifics = _struct(record.get("specifics"))
        pid = str(specifics.get("id") or position)
        prompt = record.get("full_prompt") or record.get("example")
        texts = _texts(record.get("predictions"))
        gold_list = record.get("gold")
        gold = str(gold_list[0]) if isinstance(gold_list, list) and gold_list else (
            str(gold_list) if isinstance(gold_list, str) else _gold(record.get("choices"), record.get("gold_index"), where))
    else:
        raise ValueError(f"{where}: neither lighteval's doc/model_response/metric columns nor the older "
                         f"example/predictions/metrics ones (columns: {', '.join(sorted(record))})")
    return {"problem_id": str(pid), "prompt": prompt if isinstance(prompt, str) else None, "texts": texts,
            "gold": gold, "metrics": metrics}


def _records(paths: Paths) -> Iterator[tuple[str, int, dict[str, Any]]]:
    for path in as_paths(paths):
        row = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
            for record in batch.to_pylist():
                yield f"{path}: row {row}", row, record
                row += 1


def iter_lighteval(paths: Paths, *, model: Optional[str] = None, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """IMPORT_SCHEMA batches of every sample text (``correct`` null: verified at import)."""
    label = model or "lighteval"

    def rows() -> Iterator[dict[str, Any]]:
        for where, position, record in _records(paths):
            d = document(record, where, position)
            if not d["texts"]:
                raise ValueError(f"{where}: no sample texts (model_response.text / predictions); import its "
                                 "metric as counts with metric=NAME")
            if d["gold"] is None:
                raise ValueError(f"{where}: no gold answer (doc.choices[doc.gold_index] / gold)")
            for i, text in enumerate(d["texts"]):
                yield {"model": label, "problem_id": d["problem_id"], "sample_index": i, "prompt": d["prompt"],
                       "response": text, "answer": d["gold"], "source": where}

    return batched(rows(), batch_rows)


def read_lighteval(paths: Paths, *, model: Optional[str] = None, batch_rows: int = BATCH_ROWS) -> pa.Table:
    """lighteval details as one IMPORT_SCHEMA table of sample texts."""
    return to_table(iter_lighteval(paths, model=model, batch_rows=batch_rows))


def read_lighteval_counts(paths: Paths, metric: str, *, model: Optional[str] = None, n: Optional[int] = None) -> pa.Table:
    """COUNTS_SCHEMA from a per-document mean-over-samples metric: ``c = value * n`` where n is the
    number of sample texts (or ``doc.num_samples``, or ``n``). A value that does not give a whole c is an
    error, not rounded away."""
    label = model or "lighteval"
    out: dict[str, list[Any]] = {"problem_id": [], "model": [], "n": [], "c": []}
    for where, position, record in _records(paths):
        d = document(record, where, position)
        if metric not in d["metrics"]:
            raise ValueError(f"{where}: no metric {metric!r} (metrics: {', '.join(sorted(d['metrics']))})")
        value = d["metrics"][metric]
        count = n or len(d["texts"]) or _struct(record.get("doc")).get("num_samples")
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"{where}: the number of samples is unknown; pass n")
        if not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"{where}: metric {metric!r} = {value!r} is not a mean over samples in [0, 1]")
        c = value * count
        if abs(c - round(c)) > 1e-6:
            raise ValueError(f"{where}: metric {metric!r} = {value!r} times n = {count} is not a whole count")
        for key, v in (("problem_id", d["problem_id"]), ("model", label), ("n", count), ("c", int(round(c)))):
            out[key].append(v)
    return pa.table(out, schema=COUNTS)
