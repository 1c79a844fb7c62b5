"""Statistics of a base-vs-trained comparison: bands for one of two interval targets, crossings, the
sampling-efficiency gap, problems solved, and accuracy histograms.

Every interval answers one of two questions (``TARGETS``). ``"benchmark"``: the problems are fixed and
the n samples drawn per problem are the randomness (how far can *this* benchmark's pass@k be from what
the samples show); its resamples are posterior draws of every problem's solve rate
(``passkcore.numbers.posterior_grid``), each model's independently (their samples are). ``"population"``:
the problems are a draw too (problems like these); its resamples are the paired bootstrap below.

The bootstrap resamples problems with replacement, the same resample for every model. A resample only
changes how many times each problem is drawn, and every problem with the same joint tuple of (n, c)
across models contributes the same values, so a resample is a multinomial count vector over the
distinct joint tuples (~350 for MATH500, against 500 problems) and its curves are one matrix product
with an exactly computed table: per resample, work proportional to the distinct tuples times the ks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import numpy.typing as npt

from passkcore._native import core
from passkcore.numbers.inputs import counts_pair, ks_array
from passkcore.numbers.posterior_grid import GridPosterior

F64 = npt.NDArray[np.float64]
# Resamples per block are chosen so a block's weights stay under 2^22 doubles (32 MiB): all 10,000
# MATH500 resamples (213 model pairs) fit in one block, 10^6-problem inputs still run in bounded memory.
_CHUNK_DOUBLES = 1 << 18
TARGETS = ("benchmark", "population")


def check_target(target: str) -> str:
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(map(repr, TARGETS))}, got {target!r}")
    return target


@dataclass(frozen=True)
class Band:
    """A point estimate with a percentile bootstrap interval, per k."""

    ks: npt.NDArray[np.int64]
    estimate: F64
    low: F64
    high: F64


@dataclass(frozen=True)
class Crossing:
    """Where the curve that starts lower (``a``, lower pass@1) first reaches the other (``b``).

    ``k`` is None when it does not within the compared ks; ``low``/``high`` are bootstrap percentiles
    of the crossing k, None where that percentile falls beyond the largest k (no crossing within n);
    ``fraction`` is the share of resamples in which the curves cross.
    """

    a: str
    b: str
    k: Optional[int]
    low: Optional[int]
    high: Optional[int]
    fraction: float

    def as_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "k": self.k, "ci_low": self.low, "ci_high": self.high,
                "fraction_of_resamples": self.fraction}


@dataclass(frozen=True)
class Gap:
    """Sampling-efficiency gap: pass@1 of the trained model minus pass@k_max of the base."""

    trained: str
    base: str
    k_max: int
    estimate: float
    low: float
    high: float


def _check_ci(ci: float) -> None:
    if not 0.0 < float(ci) < 1.0:
        raise ValueError(f"ci must be in (0, 1), got {ci!r}")


class PairedBootstrap:
    """Seeded resamples of several models' mean pass@k curves, aligned by position, for one target.

    ``counts[model] = (n, c)``, every model over the same problems in the same order (``Coverage``
    aligns count files by problem_id). ``target="population"``: a paired bootstrap over problems;
    ``target="benchmark"``: ``resamples`` posterior draws per model (``GridPosterior``). Bands,
    differences, crossings, the gap and problems solved all read the same resamples.
    """

    def __init__(self, counts: Mapping[str, tuple[Any, Any]], *, resamples: int = 10_000, seed: int = 0,
                 target: str = "benchmark") -> None:
        self.target = check_target(target)
        if not counts:
            raise ValueError("no models given")
        if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)) or resamples < 1:
            raise ValueError(f"resamples must be a positive integer, got {resamples!r}")
        self.models = list(counts)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**64:
            raise ValueError(f"seed must be an integer in [0, 2^64), got {seed!r}")
        self.resamples = int(resamples)
        self.seed = int(seed)
        pair_ids, self._tables_src = [], {}
        size = None
        for name, (n, c) in counts.items():
            n_arr, c_arr = counts_pair(n, c)
            if size is not None and n_arr.size != size:
                raise ValueError(f"model {name!r} has {n_arr.size} problems, the first model {size}")
            size = n_arr.size
            pn, pc, _, inverse = core.distinct_pairs(n_arr, c_arr)
            self._tables_src[name] = (pn, pc, n_arr, c_arr)
            pair_ids.append(inverse)
        self.problems = int(size or 0)
        joint, self._joint_inverse = np.unique(np.stack(pair_ids), axis=1, return_inverse=True)
        self._joint = joint  # [models, distinct joint tuples]: each model's pair index
        self._joint_count = np.bincount(self._joint_inverse.ravel(), minlength=joint.shape[1])
        self._pair_index = np.ascontiguousarray(np.stack(pair_ids), dtype=np.int64)  # [models, problems]
        self._widths = np.array([src[0].size for src in self._tables_src.values()], dtype=np.int64)
        self._curve_cache: dict[tuple[str, tuple[int, ...]], F64] = {}
        self._posteriors: dict[str, GridPosterior] = {}

    @property
    def distinct_tuples(self) -> int:
        return int(self._joint.shape[1])

    def min_n(self, model: str) -> int:
        return int(self._tables_src[self._check(model)][2].min())

    def _check(self, model: str) -> str:
        if model not in self._tables_src:
            raise ValueError(f"unknown model {model!r}; known: {', '.join(map(repr, self.models))}")
        return model

    def _resample_curves(self, models: list[str], k_arr: npt.NDArray[np.int64]) -> list[F64]:
        """Each model's mean pass@k in every resample, (resamples, K) per model.

        Two equivalent ways to draw: with P <= 30 x the distinct joint tuples, draw the problems
        (~2 ns each, natively) and count them per model pair; beyond that, draw a multinomial over
        joint tuples (~60 ns per tuple with numpy), which no longer grows with P. Either way a block
        of resamples depends only on the seed and its index, so every call sees the same resamples.
        """
        positions = [self.models.index(m) for m in models]
        # Exact values per distinct (n, c), with the mean's 1/P folded in.
        tables = [core.pass_matrix(*self._tables_src[m][:2], k_arr, "pass_at_k") / self.problems for m in models]
        curves = [np.empty((self.resamples, k_arr.size)) for _ in models]
        direct = self.problems <= 30 * self.distinct_tuples
        width = int(self._widths.sum()) if direct else self.distinct_tuples
        chunk = max(1, min(self.resamples, _CHUNK_DOUBLES // max(1, width)))
        buffers = [np.empty((chunk, int(w))) for w in self._widths] if direct else []
        joint = [t[self._joint[p]] for p, t in zip(positions, tables)]
        for first in range(0, self.resamples, chunk):
            size = min(chunk, self.resamples - first)
            if direct:
                if size < chunk:
                    buffers = [b[:size] for b in buffers]
                core.bootstrap_counts(self._pair_index, buffers, self.seed, first)
                for out, p, table in zip(curves, positions, tables):
                    np.matmul(buffers[p], table, out=out[first:first + size])
            else:
                rng = np.random.default_rng([self.seed, first])
                w = rng.multinomial(self.problems, self._joint_count / self.problems, size=size).astype(np.float64)
                for out, table in zip(curves, joint):
                    np.matmul(w, table, out=out[first:first + size])
        return curves

    def _fill(self, models: Sequence[str], k_arr: npt.NDArray[np.int64]) -> None:
        """Computes the resample curves of several models in one pass over the resamples."""
        key = tuple(k_arr.tolist())
        todo = [m for m in dict.fromkeys(models) if (m, key) not in self._curve_cache]
        if not todo:
            return
        for model in todo:
            n_min = int(self._tables_src[model][2].min())
            if n_min < int(k_arr.max()):
                raise ValueError(f"k={int(k_arr.max())} exceeds n={n_min} for model {model!r}")
        curves = self._resample_curves(todo, k_arr) if self.target == "population" else [
            self._posterior(model).curves(k_arr) for model in todo]
        for model, curve in zip(todo, curves):
            self._curve_cache[(model, key)] = curve

    def _posterior(self, model: str) -> GridPosterior:
        """The model's posterior draws; each model's own seed, from (seed, its position)."""
        if model not in self._posteriors:
            seed = int(np.random.SeedSequence([self.seed, self.models.index(model)]).generate_state(1, np.uint64)[0])
            n_arr, c_arr = self._tables_src[model][2:]
            self._posteriors[model] = GridPosterior(n_arr, c_arr, draws=self.resamples, seed=seed)
        return self._posteriors[model]

    def curves(self, model: str, ks: Any) -> F64:
        """Mean pass@k of every resample, shape (resamples, K)."""
        k_arr = ks_array(ks)
        self._fill([self._check(model)], k_arr)
        return self._curve_cache[(model, tuple(k_arr.tolist()))]

    def prepare(self, models: Sequence[str], ks: Any) -> None:
        """Computes several models' resample curves together (faster than one call per model)."""
        self._fill([self._check(m) for m in models], ks_array(ks))

    def point(self, model: str, ks: Any) -> F64:
        _, _, n_arr, c_arr = self._tables_src[self._check(model)]
        return core.pass_curve(n_arr, c_arr, ks_array(ks), "pass_at_k")

    def band(self, model: str, ks: Any, ci: float = 0.95) -> Band:
        """Percentile interval of the model's mean pass@k at each k."""
        _check_ci(ci)
        k_arr = ks_array(ks)
        low, high = np.quantile(self.curves(model, k_arr), [(1 - ci) / 2, (1 + ci) / 2], axis=0)
        return Band(k_arr, self.point(model, k_arr), low, high)

    def difference(self, a: str, b: str, ks: Any, ci: float = 0.95) -> Band:
        """pass@k(a) - pass@k(b) per k, with the paired interval."""
        _check_ci(ci)
        if a == b:
            raise ValueError(f"a difference needs two different models, got {a!r} twice")
        k_arr = ks_array(ks)
        self.prepare([a, b], k_arr)
        diff = self.curves(a, k_arr) - self.curves(b, k_arr)
        low, high = np.quantile(diff, [(1 - ci) / 2, (1 + ci) / 2], axis=0)
        return Band(k_arr, self.point(a, k_arr) - self.point(b, k_arr), low, high)

    def crossing(self, a: str, b: str, ci: float = 0.95, ks: Optional[Sequence[int]] = None) -> Crossing:
        """Smallest k at which the model lower at pass@1 reaches the other (every k up to min n)."""
        _check_ci(ci)
        if a == b:
            raise ValueError(f"a crossing needs two different models, got {a!r} twice")
        k_arr = ks_array(ks) if ks is not None else np.arange(1, min(self.min_n(a), self.min_n(b)) + 1)
        k_arr = np.sort(k_arr)
        pa, pb = self.point(a, k_arr), self.point(b, k_arr)
        if pa[0] > pb[0]:
            a, b, pa, pb = b, a, pb, pa
        reached = pa >= pb
        k_point = int(k_arr[np.argmax(reached)]) if reached.any() else None
        self.prepare([a, b], k_arr)
        hit = self.curves(a, k_arr) >= self.curves(b, k_arr)
        first = np.where(hit.any(axis=1), k_arr[np.argmax(hit, axis=1)], np.iinfo(np.int64).max)
        low, high = np.quantile(first, [(1 - ci) / 2, (1 + ci) / 2], method="inverted_cdf")
        beyond = int(k_arr[-1])
        return Crossing(
            a, b, k_point,
            int(low) if low <= beyond else None,
            int(high) if high <= beyond else None,
            float(hit.any(axis=1).mean()),
        )

    def efficiency_gap(self, trained: str, base: str, k_max: int = 256, ci: float = 0.95) -> Gap:
        """pass@1(trained) - pass@k_max(base); k_max is capped at the base model's smallest n."""
        _check_ci(ci)
        k = min(int(k_max), self.min_n(base))
        est = float(self.point(trained, [1])[0] - self.point(base, [k])[0])
        diff = self.curves(trained, [1])[:, 0] - self.curves(base, [k])[:, 0]
        low, high = np.quantile(diff, [(1 - ci) / 2, (1 + ci) / 2])
        return Gap(trained, base, k, est, float(low), float(high))

    def solved(self, model: str, k: int, ci: float = 0.95) -> Band:
        """Problems solved with k samples, P x pass@k (at k = n: the problems with c > 0), and its interval."""
        band = self.band(model, [k], ci)
        return Band(band.ks, band.estimate * self.problems, band.low * self.problems, band.high * self.problems)

    def solved_difference(self, a: str, b: str, k: int, ci: float = 0.95) -> Band:
        """Problems solved with k samples by ``a`` minus by ``b``, with its (paired, for the population) interval."""
        band = self.difference(a, b, [k], ci)
        return Band(band.ks, band.estimate * self.problems, band.low * self.problems, band.high * self.problems)


def pass_at_k_interval(n: Any, c: Any, k: Any, *, target: str = "benchmark", ci: float = 0.95,
                       resamples: int = 2000, seed: int = 0) -> tuple[F64, F64, F64]:
    """Mean pass@k over problems and its ``ci`` interval for ``target``, one entry per k.

    ``target="benchmark"``: these problems fixed, their samples random (posterior draws of each
    problem's rate, calibrated by simulation at every k up to n); ``"population"``: problems like these
    (a bootstrap over problems). n may differ per problem; every k must be <= the smallest n.
    Returns ``(value, low, high)``: value is the unbiased estimate, identical for both targets.
    """
    band = PairedBootstrap({"m": (n, c)}, resamples=resamples, seed=seed, target=target).band("m", k, ci)
    return band.estimate, band.low, band.high


def numpy_bootstrap(matrices: Sequence[F64], resamples: int, seed: int = 0) -> list[F64]:
    """The straightforward paired bootstrap (resample problem indices, mean a precomputed
    per-problem (P, K) matrix): the reference the fast one is tested and benchmarked against."""
    rng = np.random.default_rng(seed)
    problems = matrices[0].shape[0]
    out = [np.empty((resamples, m.shape[1])) for m in matrices]
    for r in range(resamples):
        idx = rng.integers(0, problems, problems)
        for m, o in zip(matrices, out):
            o[r] = m[idx].mean(axis=0)
    return out


@dataclass(frozen=True)
class AccuracyHistogram:
    """Problems by accuracy c/n: exactly 0 and exactly 1 have bins of their own."""

    labels: list[str]
    counts: npt.NDArray[np.int64]

    @property
    def fractions(self) -> F64:
        return self.counts / max(1, int(self.counts.sum()))


def accuracy_histogram(n: Any, c: Any, bins: int = 10) -> AccuracyHistogram:
    """Histogram of c/n with bins [0], (0, 1/b], ..., ((b-1)/b, 1), [1]."""
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    n_arr, c_arr = counts_pair(n, c)
    zero, one = c_arr == 0, c_arr == n_arr
    mid = ~zero & ~one
    # Exact integer bin index: ceil(bins * c / n) - 1 for 0 < c < n.
    idx = (bins * c_arr[mid] + n_arr[mid] - 1) // n_arr[mid] - 1
    inner = np.bincount(idx, minlength=bins)[:bins]
    edges = [f"{i / bins:g}" for i in range(bins + 1)]
    labels = ["0"] + [f"({edges[i]}, {edges[i + 1]}]" for i in range(bins - 1)] + [f"({edges[-2]}, 1)", "1"]
    return AccuracyHistogram(labels, np.concatenate([[zero.sum()], inner, [one.sum()]]).astype(np.int64))
