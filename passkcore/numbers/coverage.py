"""Which problems each model (or checkpoint) can solve, as bitsets, and their set algebra.

A problem is *solved* by a model when its pass@k reaches ``threshold``; with no threshold it is solved
when any sample is correct (c > 0, "solvable at all", the RLVR paper's coverage). Problems are matched
across models by ``problem_id``, never by position.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from passkcore._native import core
from passkcore.numbers.counts import ModelCounts, read_counts, split_models, validate
from passkcore.numbers.estimate import pass_at_k
from passkcore.numbers.inputs import counts_pair

IdArray = npt.NDArray[np.object_]


@dataclass(frozen=True)
class PairTable:
    """How two models' solved sets overlap: counts, and the problem ids behind each cell."""

    a: str
    b: str
    both: int
    only_a: int
    only_b: int
    neither: int
    both_ids: IdArray
    only_a_ids: IdArray
    only_b_ids: IdArray
    neither_ids: IdArray

    @property
    def problems(self) -> int:
        return self.both + self.only_a + self.only_b + self.neither

    def __getitem__(self, key: str) -> Any:
        """Dict-style access to the fields: ``table["only_b"]``."""
        return getattr(self, key)

    def as_dict(self) -> dict[str, Any]:
        """The counts only, as in ``passk coverage --json``."""
        return {"a": self.a, "b": self.b, "both": self.both, "only_a": self.only_a,
                "only_b": self.only_b, "neither": self.neither}


def to_bitset(solved: npt.NDArray[np.bool_]) -> npt.NDArray[np.uint64]:
    """Packs a boolean vector into little-endian 64-bit words (bit i of the set = element i)."""
    packed = np.packbits(np.asarray(solved, dtype=bool), bitorder="little")
    padded = np.zeros(-(-packed.size // 8) * 8, dtype=np.uint8)
    padded[: packed.size] = packed
    return padded.view("<u8").astype(np.uint64, copy=False)


def from_bitset(bits: npt.NDArray[np.uint64], size: int) -> npt.NDArray[np.bool_]:
    return np.unpackbits(bits.view(np.uint8), count=size, bitorder="little").astype(bool)


def _check_threshold(threshold: Optional[float]) -> None:
    if threshold is None:
        return
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating, np.integer)):
        raise TypeError(f"threshold must be a number in [0, 1], got {threshold!r}")
    if not 0.0 <= float(threshold) <= 1.0:  # NaN fails this too
        raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")


def align_models(models: dict[str, ModelCounts], intersect: bool) -> tuple[IdArray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Puts every model's counts in one problem order (the first model's), by problem_id."""
    names = list(models)
    order = models[names[0]].problem_ids
    common = set(order.tolist())
    for m in models.values():
        ids = set(m.problem_ids.tolist())
        if ids != common and not intersect:
            missing = sorted(common - ids) or sorted(ids - common)
            owner = m.model if common - ids else names[0]
            raise ValueError(
                f"problem_id {missing[0]!r} is missing for model {owner!r} ({len(missing)} problem(s) differ); "
                "pass intersect=True to keep only the problems every model has"
            )
        common &= ids
    keep = np.array([pid in common for pid in order.tolist()], dtype=bool)
    ids_out = order[keep]
    aligned: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, m in models.items():
        pos = {pid: i for i, pid in enumerate(m.problem_ids.tolist())}
        idx = np.fromiter((pos[pid] for pid in ids_out.tolist()), dtype=np.int64, count=ids_out.size)
        aligned[name] = (m.n[idx], m.c[idx])
    return ids_out, aligned


class Coverage:
    """Problems x models solved-sets with set algebra; build with ``from_counts``, ``from_arrays``
    or ``from_outcomes``."""

    def __init__(self, problem_ids: Any, counts: Optional[Mapping[str, tuple[Any, Any]]] = None, *,
                 intersect: bool = False) -> None:
        """``Coverage(problem_ids, {model: (n, c)})``, or ``Coverage(source)`` for a count file path, an
        Arrow table or pandas DataFrame with ``problem_id, model, n, c`` (as ``from_counts``)."""
        if counts is None:
            built = Coverage.from_counts(problem_ids, intersect=intersect)
            problem_ids, counts = built._ids, {m: built.counts(m) for m in built.models}
        ids = np.asarray([str(p) for p in problem_ids], dtype=object)
        if ids.size == 0:
            raise ValueError("problem_ids is empty")
        uniq, first, freq = np.unique(ids.astype(str), return_index=True, return_counts=True)
        if (freq > 1).any():
            dup = str(uniq[np.argmax(freq > 1)])
            raise ValueError(f"duplicate problem_id {dup!r} at positions {np.flatnonzero(ids == dup).tolist()[:5]}")
        if not counts:
            raise ValueError("no models given")
        self._ids: IdArray = ids
        self._models = list(counts)
        self._n: dict[str, npt.NDArray[np.int64]] = {}
        self._c: dict[str, npt.NDArray[np.int64]] = {}
        for name, (n, c) in counts.items():
            n_arr, c_arr = counts_pair(n, c)
            if c_arr.size != ids.size:
                raise ValueError(f"model {name!r}: {c_arr.size} counts for {ids.size} problem_ids")
            self._n[name], self._c[name] = n_arr, c_arr
        self._outcomes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._cache: dict[tuple[str, Optional[int], Optional[float]], npt.NDArray[np.uint64]] = {}

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def from_counts(cls, source: Union[str, Path, pa.Table, Mapping[str, ModelCounts], Any], *,
                    intersect: bool = False) -> Coverage:
        """From a count file (CSV or Parquet), an open run (anything with ``counts() -> pa.Table``, such
        as ``SampleStore``), an Arrow table or pandas DataFrame with ``problem_id, model, n, c``, or
        ``read_counts``/``passkcore.analysis.load_counts`` output."""
        if isinstance(source, (str, Path)):
            if Path(source).is_dir():
                raise ValueError(f"{source} is a directory: open a run with passkcore.SampleStore({str(source)!r}) "
                                 "or read it with passkcore.analysis.load_counts")
            models = read_counts(source)
        elif callable(run_counts := getattr(source, "counts", None)):  # an open run: its group-by of verdicts
            models = split_models(validate(run_counts(), source=str(getattr(source, "root", "run"))))
        elif isinstance(source, pa.Table):
            models = split_models(validate(source))
        elif hasattr(source, "columns") and hasattr(source, "to_dict"):  # a pandas DataFrame
            models = split_models(validate(pa.Table.from_pandas(source, preserve_index=False)))
        else:
            models = dict(source)
        ids, aligned = align_models(models, intersect)
        if ids.size == 0:
            raise ValueError("the models share no problem_id")
        return cls(ids, aligned)

    @classmethod
    def from_arrays(cls, problem_ids: Sequence[Any], counts: Mapping[str, tuple[Any, Any]]) -> Coverage:
        """``counts[model] = (n, c)``, each aligned with ``problem_ids``."""
        return cls(problem_ids, counts)

    @classmethod
    def from_outcomes(cls, problem_ids: Sequence[Any], outcomes: Mapping[str, Sequence[Iterable[bool]]]) -> Coverage:
        """``outcomes[model][p]`` holds problem p's per-sample verdicts. They are kept as one bitset per
        problem (n bits), c is their popcount, so later analyses can resample samples."""
        counts, packed = {}, {}
        for name, per_problem in outcomes.items():
            if len(per_problem) != len(problem_ids):
                raise ValueError(f"model {name!r}: outcomes for {len(per_problem)} problems, {len(problem_ids)} problem_ids")
            arrays = [np.asarray(list(o) if not isinstance(o, np.ndarray) else o) for o in per_problem]
            for p, a in enumerate(arrays):
                if a.dtype != bool and not (a.size == 0 or np.isin(a, (0, 1)).all()):
                    raise ValueError(f"model {name!r}, problem {p}: outcomes must be booleans or 0/1")
            lengths = np.array([a.size for a in arrays], dtype=np.int64)
            offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
            flat = np.concatenate(arrays).astype(np.uint8) if arrays else np.zeros(0, np.uint8)
            words, word_offsets = core.pack_segments(flat, offsets)
            packed[name] = (words, word_offsets)
            counts[name] = (lengths, core.segment_popcount(words, word_offsets))
        cov = cls(problem_ids, counts)
        cov._outcomes = packed
        return cov

    # -- access -------------------------------------------------------------------------------------
    @property
    def models(self) -> list[str]:
        return list(self._models)

    @property
    def problem_ids(self) -> IdArray:
        return self._ids.copy()

    def counts(self, model: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        self._check_model(model)
        return self._n[model], self._c[model]

    def outcomes(self, model: str, problem: int) -> npt.NDArray[np.bool_]:
        """The per-sample verdicts of one problem, from its bitset (``from_outcomes`` only)."""
        self._check_model(model)
        if model not in self._outcomes:
            raise ValueError(f"model {model!r} was built from counts; per-sample outcomes are not stored")
        words, offsets = self._outcomes[model]
        if not 0 <= problem < self._ids.size:
            raise ValueError(f"problem index {problem} outside [0, {self._ids.size})")
        return from_bitset(words[offsets[problem]: offsets[problem + 1]], int(self._n[model][problem]))

    def _check_model(self, model: str) -> None:
        if model not in self._n:
            raise ValueError(f"unknown model {model!r}; known: {', '.join(map(repr, self._models))}")

    def bitset(self, model: str, k: Optional[int] = None, threshold: Optional[float] = None) -> npt.NDArray[np.uint64]:
        """The solved set as 64-bit words: pass@k >= threshold, or c > 0 without a threshold."""
        self._check_model(model)
        _check_threshold(threshold)
        key = (model, k, None if threshold is None else float(threshold))
        if key not in self._cache:
            n, c = self._n[model], self._c[model]
            if k is not None:
                short = np.flatnonzero(n < k)
                if short.size:
                    i = int(short[0])
                    raise ValueError(f"k={k} exceeds n={int(n[i])} for model {model!r}, problem_id {self._ids[i]!r}")
            if threshold is None:
                solved = c > 0
            else:
                solved = pass_at_k(n, c, int(k) if k is not None else int(n.min())) >= float(threshold)
            self._cache[key] = to_bitset(solved)
        return self._cache[key]

    def solved(self, model: str, k: Optional[int] = None, threshold: Optional[float] = None) -> IdArray:
        """Problem ids the model solves."""
        return self._ids[from_bitset(self.bitset(model, k, threshold), self._ids.size)]

    def _pair(self, a: str, b: str) -> None:
        self._check_model(a)
        self._check_model(b)
        if a == b:
            raise ValueError(f"a pairwise comparison needs two different models, got {a!r} twice")

    def table(self, a: str, b: str, k: Optional[int] = None, threshold: Optional[float] = None) -> PairTable:
        """both / only a / only b / neither, with counts and problem ids."""
        self._pair(a, b)
        sa = from_bitset(self.bitset(a, k, threshold), self._ids.size)
        sb = from_bitset(self.bitset(b, k, threshold), self._ids.size)
        cells = [sa & sb, sa & ~sb, ~sa & sb, ~sa & ~sb]
        both, only_a, only_b, neither = (int(x.sum()) for x in cells)
        return PairTable(a, b, both, only_a, only_b, neither, *(self._ids[x] for x in cells))

    def only(self, a: str, b: str, k: Optional[int] = None, threshold: Optional[float] = None) -> IdArray:
        """Problem ids solved by ``a`` and not by ``b``."""
        self._pair(a, b)
        sa = self.bitset(a, k, threshold)
        return self._ids[from_bitset(sa & ~self.bitset(b, k, threshold), self._ids.size)]

    def matrix(self, k: Optional[int] = None, threshold: Optional[float] = None) -> npt.NDArray[np.int64]:
        """``out[i, j]``: problems solved by model i and not by model j (models in ``.models`` order)."""
        if len(self._models) < 2:
            raise ValueError(f"the matrix compares models pairwise; only {len(self._models)} model(s) given")
        rows = np.stack([self.bitset(m, k, threshold) for m in self._models])
        return core.andnot_matrix(rows)

    def num_solved(self, model: str, k: Optional[int] = None, threshold: Optional[float] = None) -> int:
        return int(core.row_popcount(self.bitset(model, k, threshold)[None, :])[0])

    def is_subset(self, a: str, b: str, k: Optional[int] = None, threshold: Optional[float] = None) -> bool:
        """Whether every problem ``a`` solves, ``b`` solves too."""
        self._pair(a, b)
        rows = np.stack([self.bitset(a, k, threshold), self.bitset(b, k, threshold)])
        return bool(core.andnot_matrix(rows)[0, 1] == 0)

    def jaccard(self, a: str, b: str, k: Optional[int] = None, threshold: Optional[float] = None) -> float:
        """|A and B| / |A or B| of the solved sets (1.0 when both are empty)."""
        t = self.table(a, b, k, threshold)
        union = t.both + t.only_a + t.only_b
        return 1.0 if union == 0 else t.both / union

    def pairs(self, k: Optional[int] = None, threshold: Optional[float] = None) -> list[PairTable]:
        """One table for each unordered pair of models, in model order."""
        if len(self._models) < 2:
            raise ValueError(f"pairs need at least two models; only {len(self._models)} given")
        return [self.table(a, b, k, threshold) for a, b in combinations(self._models, 2)]


def coverage_summary(cov: Coverage, k: int, threshold: Optional[float] = None) -> dict[str, Any]:
    """The ``passk coverage --json`` document: solved counts per model and every unordered pair."""
    return {
        "k": k,
        "models": cov.models,
        "solved": {m: cov.num_solved(m, k, threshold) for m in cov.models},
        "pairs": [t.as_dict() for t in cov.pairs(k, threshold)],
    }
