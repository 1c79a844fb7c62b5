"""Count tables: ``problem_id, model, n, c`` per row, from CSV or Parquet, validated row by row.

``COUNTS_SCHEMA`` is the one definition of a count table (the run directory's counts and the importers'
count files use it). A run's counts are an Arrow group-by of its verdicts: ``passkcore.analysis.load_counts``
reads any source (count file, run directory, open run); this module knows files only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

COLUMNS = ("problem_id", "model", "n", "c")
COUNTS_SCHEMA = pa.schema([("problem_id", pa.string()), ("model", pa.string()), ("n", pa.int64()), ("c", pa.int64())])


@dataclass(frozen=True)
class ModelCounts:
    """One model's per-problem counts, in file order."""

    model: str
    problem_ids: npt.NDArray[np.object_]
    n: npt.NDArray[np.int64]
    c: npt.NDArray[np.int64]
    rows: npt.NDArray[np.int64]  # each problem's 0-based data row in the source file

    @property
    def problems(self) -> int:
        return int(self.n.size)


def read_table(path: Union[str, Path]) -> pa.Table:
    """Reads a CSV or Parquet count file with ids and models as strings."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"counts file {str(path)!r} does not exist")
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        table = pq.read_table(path)
    else:
        import pyarrow.csv as pcsv

        convert = pcsv.ConvertOptions(column_types={"problem_id": pa.string(), "model": pa.string()})
        try:
            table = pcsv.read_csv(path, convert_options=convert)
        except pa.ArrowInvalid as exc:
            raise ValueError(f"{path}: not a readable CSV count file: {exc}") from exc
    return table


def _as_int_column(table: pa.Table, name: str, source: str) -> npt.NDArray[np.int64]:
    col = table.column(name)
    if col.null_count:
        row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise ValueError(f"{source}: row {row}: column {name!r} is empty")
    if pa.types.is_integer(col.type):
        return col.to_numpy().astype(np.int64, copy=False)
    if pa.types.is_floating(col.type):
        values = col.to_numpy()
        bad = ~np.isfinite(values) | (np.floor(np.nan_to_num(values)) != np.nan_to_num(values))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{source}: row {row}: column {name!r} is not an integer count ({values[row]!r})")
        return values.astype(np.int64)
    raise ValueError(f"{source}: column {name!r} must hold integer counts, found {col.type}")


def validate(table: pa.Table, source: str = "counts") -> pa.Table:
    """Checks columns, counts and uniqueness; returns the table with the canonical schema."""
    missing = [name for name in COLUMNS if name not in table.column_names]
    if missing:
        raise ValueError(f"{source}: missing column(s) {', '.join(missing)}; need {', '.join(COLUMNS)}")
    if table.num_rows == 0:
        raise ValueError(f"{source}: no rows")
    ids = table.column("problem_id").cast(pa.string())
    models = table.column("model").cast(pa.string())
    for name, col in (("problem_id", ids), ("model", models)):
        if col.null_count:
            row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise ValueError(f"{source}: row {row}: column {name!r} is empty")
    n = _as_int_column(table, "n", source)
    c = _as_int_column(table, "c", source)
    bad = (n < 1) | (c < 0) | (c > n)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        why = "n must be at least 1" if n[row] < 1 else ("c must be non-negative" if c[row] < 0 else "c exceeds n")
        raise ValueError(
            f"{source}: row {row} (model={models[row]}, problem_id={ids[row]}): {why} (n={n[row]}, c={c[row]})"
        )
    out = pa.table({"problem_id": ids, "model": models, "n": n, "c": c}, schema=COUNTS_SCHEMA)
    keys = pc.binary_join_element_wise(out.column("model"), out.column("problem_id"), "\x1f")
    counts = pc.value_counts(keys)
    dup = pc.filter(counts, pc.greater(counts.field("counts"), 1))
    if len(dup):
        key = dup[0]["values"].as_py()
        rows = np.flatnonzero(pc.equal(keys, key).to_numpy(zero_copy_only=False))
        model, pid = key.split("\x1f", 1)
        raise ValueError(
            f"{source}: duplicate (model, problem_id) = ({model}, {pid}) at rows {', '.join(map(str, rows[:5]))}"
        )
    return out


def split_models(table: pa.Table) -> dict[str, ModelCounts]:
    """Per-model counts, models in order of first appearance."""
    models = table.column("model").to_numpy(zero_copy_only=False)
    ids = table.column("problem_id").to_numpy(zero_copy_only=False)
    n = table.column("n").to_numpy()
    c = table.column("c").to_numpy()
    _, first = np.unique(models, return_index=True)
    out: dict[str, ModelCounts] = {}
    for name in models[np.sort(first)]:
        rows = np.flatnonzero(models == name)
        out[str(name)] = ModelCounts(str(name), ids[rows], n[rows], c[rows], rows.astype(np.int64))
    return out


def read_counts(path: Union[str, Path]) -> dict[str, ModelCounts]:
    """Reads, validates and splits a count file (CSV or Parquet) by model."""
    return split_models(validate(read_table(path), source=str(path)))
