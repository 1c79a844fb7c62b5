"""Helpers the importer tests share."""

from __future__ import annotations

from typing import Any


def nc(table: Any, by: tuple[str, ...] = ("problem_id",)) -> dict[Any, tuple[int, int]]:
    """(n, c) per key of an imported samples table: the key one column's value, or a tuple of several."""
    out: dict[Any, list[int]] = {}
    for r in table.select([*by, "correct"]).to_pylist():
        key = r[by[0]] if len(by) == 1 else tuple(r[b] for b in by)
        v = out.setdefault(key, [0, 0])
        v[0] += 1
        v[1] += int(r["correct"])
    return {k: (v[0], v[1]) for k, v in out.items()}
