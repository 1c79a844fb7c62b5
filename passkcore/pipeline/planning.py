"""Planning whose memory stays flat in the run's size: what a stage lacks, found from key columns and
sorted int64 codes, one sample shard at a time; items that name rows by position, not by key.

A plan holds, per stored key, only the 8-byte code of the folder it checks against (a fresh
``KeyIndex``, dropped with the plan), and reads one shard's key columns at a time. An item
is a row range of one sample shard (``file``, ``start``, ``stop``) with a bit mask of the rows it
covers when they are not all of the range (``mask``: hex of ``numpy.packbits``, None for all), and
``rows``, how many. Sample shards are never rewritten, so positions stay valid; the item's shard is
named at run time by a digest of the keys it read, as every shard is (``shard_name``).

Measured on a synthetic run of 1,000 x 1,000 samples against one of 20 x 100 (``benches/test_pipeline.py``,
``docs/benchmarks.md``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa

from passkcore.pipeline.executors import Item
from passkcore.pipeline.run import SAMPLE_SCHEMA, KeyIndex, read_key_columns
from passkcore.pipeline.store import SampleStore


def key_index(store: SampleStore, kind: str, label: str) -> KeyIndex:
    """The keys stored in one folder, read now: a fresh index, not the store's (which the store keeps
    for its writes), so nothing of it outlives the plan."""
    return KeyIndex(store.folder(kind, label), kind).refresh()


def missing_rows(store: SampleStore, model: str, indexes: Sequence[KeyIndex],
                 batch: int) -> Iterator[tuple[Path, np.ndarray, np.ndarray]]:
    """(sample shard, row positions, done flags of those rows: one column per index) for ``model``'s
    samples that some index lacks, in groups of at most ``batch`` rows of one shard, shard by shard."""
    for path in store.files("samples", model):
        keys = read_key_columns(path, ["model", "problem_id", "sample_index"])
        flags = np.stack([index.contains(index.codes(keys)) for index in indexes], axis=1)
        rows = np.flatnonzero(~flags.all(axis=1))
        for at in range(0, rows.size, batch):
            group = rows[at:at + batch]
            yield path, group, flags[group]


def encode_mask(mask: np.ndarray) -> Optional[str]:
    """A boolean mask as hex of its packed bits (32 bytes of text for 128 rows); None when all true."""
    return None if bool(mask.all()) else np.packbits(mask).tobytes().hex()


def decode_mask(text: Optional[str], size: int) -> np.ndarray:
    if text is None:
        return np.ones(size, bool)
    return np.unpackbits(np.frombuffer(bytes.fromhex(text), np.uint8), count=size).astype(bool)


def row_item(root: Path, model: str, path: Path, rows: np.ndarray) -> Item:
    """The item for these row positions (ascending) of one sample shard."""
    start, stop = int(rows[0]), int(rows[-1]) + 1
    mask = np.zeros(stop - start, bool)
    mask[rows - start] = True
    return {"model": model, "file": str(path.resolve().relative_to(root.resolve())), "start": start, "stop": stop,
            "mask": encode_mask(mask), "rows": int(rows.size)}


def item_positions(item: Item) -> np.ndarray:
    """The row positions an item covers, ascending."""
    start, stop = int(item["start"]), int(item["stop"])
    return start + np.flatnonzero(decode_mask(item["mask"], stop - start))


def read_rows(root: Path, item: Item, columns: Sequence[str]) -> pa.Table:
    """An item's rows of its sample shard, in position order, these columns only; only the row groups
    that hold them are read (an importer's shard of a million rows is not read whole). Columns an
    older shard lacks read as nulls."""
    import pyarrow.dataset as ds

    positions = item_positions(item)
    dataset = ds.dataset(str(root / item["file"]), schema=SAMPLE_SCHEMA, format="parquet")
    fragment = next(iter(dataset.get_fragments()))
    meta = fragment.metadata
    bounds = np.cumsum([0] + [meta.row_group(g).num_rows for g in range(meta.num_row_groups)])
    if positions.size and positions[-1] >= bounds[-1]:
        raise ValueError(f"{item['file']}: the plan names row {int(positions[-1])}, the shard holds {int(bounds[-1])}")
    first = int(np.searchsorted(bounds, positions[0], "right")) - 1 if positions.size else 0
    last = int(np.searchsorted(bounds, positions[-1], "right")) - 1 if positions.size else -1
    part = fragment.subset(row_group_ids=list(range(first, last + 1)))
    table = part.to_table(schema=SAMPLE_SCHEMA, columns=list(dict.fromkeys(columns)))
    return table.take(pa.array(positions - bounds[first], pa.int64()))


def item_keys(table: pa.Table, mask: Optional[np.ndarray] = None) -> list[list[Any]]:
    """[problem_id, sample_index] of the rows (those in ``mask``): what names the item's shard."""
    pids, idx = table.column("problem_id").to_pylist(), table.column("sample_index").to_pylist()
    return [[p, i] for j, (p, i) in enumerate(zip(pids, idx)) if mask is None or mask[j]]


def stored_indices(index: KeyIndex, problem_id: str, n: int) -> np.ndarray:
    """The distinct sample indices in [0, n) stored under one problem id (a sample folder's index)."""
    done = index.indices_of(problem_id)
    return done[(done >= 0) & (done < n)]
