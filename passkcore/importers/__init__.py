"""Reading the per-sample results of other eval stacks: ``passk import FORMAT PATH... --out RUN``.

One module per format, each with ``read_<format>(paths, ...) -> pyarrow.Table`` (IMPORT_SCHEMA: one row
per sample) and ``iter_<format>`` (the same rows in record batches, for bounded-memory imports);
``passkcore.importers.run.import_run`` puts them into a run (samples and verdicts) or a counts file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Optional

import pyarrow as pa

from passkcore.importers.common import IMPORT_SCHEMA
from passkcore.importers.evalplus import iter_evalplus, read_evalplus
from passkcore.importers.evalscope import iter_evalscope, read_evalscope
from passkcore.importers.inspect_log import iter_inspect, read_inspect
from passkcore.importers.lighteval import iter_lighteval, read_lighteval, read_lighteval_counts
from passkcore.importers.livecodebench import iter_livecodebench, read_livecodebench
from passkcore.importers.lm_eval import iter_lm_eval, read_lm_eval
from passkcore.importers.opencompass import iter_opencompass, read_opencompass
from passkcore.importers.rlvr import iter_rlvr, read_rlvr
from passkcore.importers.samples import iter_samples, read_samples
from passkcore.importers.verl import iter_verl, read_verl

ITERATORS: dict[str, Callable[..., Iterator[pa.RecordBatch]]] = {
    "lm-eval": iter_lm_eval,
    "lighteval": iter_lighteval,
    "evalplus": iter_evalplus,
    "livecodebench": iter_livecodebench,
    "rlvr": iter_rlvr,
    "samples": iter_samples,
    "inspect": iter_inspect,
    "opencompass": iter_opencompass,
    "evalscope": iter_evalscope,
    "verl": iter_verl,
}
FORMATS = tuple(ITERATORS)


def import_note(fmt: str, options: dict[str, Any]) -> Optional[str]:
    """How a format's verdicts were read, where an option decides it (the import note states it)."""
    threshold = options.get("threshold", 1.0)
    if fmt == "verl":
        return f"correct = the dump's acc where a line has it, else score >= {threshold:g}"
    if fmt == "inspect":
        scorer = options.get("scorer")
        which = f"scorer {scorer!r}" if scorer else "the log's scorer"
        return f"correct = {which} value (Inspect's value_to_float) >= {threshold:g}; n = scored epochs"
    if fmt == "evalscope":
        metric = options.get("scorer")
        return f"correct = {'metric ' + repr(metric) if metric else 'the main score'} >= {threshold:g}"
    return None


def read(fmt: str, paths: Any, **options: Any) -> pa.Table:
    """``read_<format>`` by format name."""
    if fmt not in ITERATORS:
        raise ValueError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
    return pa.Table.from_batches(list(ITERATORS[fmt](paths, **options)), schema=IMPORT_SCHEMA)


__all__ = ["FORMATS", "IMPORT_SCHEMA", "ITERATORS", "import_note", "read", "read_evalplus", "read_evalscope", "read_inspect",
           "read_lighteval", "read_lighteval_counts", "read_livecodebench", "read_lm_eval", "read_opencompass", "read_rlvr",
           "read_samples", "read_verl"]
