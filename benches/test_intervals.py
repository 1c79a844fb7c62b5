"""Benchmark-target intervals (issue 39): their cost against today's population bootstrap, and the full
calibration simulation behind docs/metrics.md's coverage table."""

from __future__ import annotations

from typing import Any

import numpy as np

import passkcore as pk
from benches.conftest import own_time, peer_time
from passkcore.numbers.calibration import SHAPES, simulate
from passkcore.numbers.coverage import Coverage
from tests.conftest import MATH500

# (nominal, (low, high) for k <= n/2, (low, high) at k = n), as tests/numbers/test_calibration.py.
BANDS = {0.95: ((0.93, 0.97), (0.90, 0.99)), 0.8: ((0.77, 0.83), (0.72, 0.90))}
# Pooled rows outside their band that are measured and documented (docs/metrics.md, "What falls
# outside"). None since the draws are centred and widened by the unbiased variance up to n/2 (before:
# "benchmark 80% hard", 76.9% for k <= n/2; after: 79.1%).
KNOWN_POOLED_FAILURES: set[str] = set()


def test_benchmark_interval_cost_math500(benchmark: Any) -> None:
    """500 problems, n = 128, every k, 2,000 resamples: target <= 2x the population bootstrap's cost.

    The ratio is of best times over 9 interleaved pairs of calls (ours, then the population's): on the
    shared 2-core VM the load moves between phases of a run, and timing one side after the other gave
    1.25x to 2.73x for the same code in four runs; interleaved, both sides see the same load."""
    cov = Coverage.from_counts(MATH500)
    n, c = cov.counts("base")
    ks = np.arange(1, 129)

    def ours() -> tuple[Any, Any, Any]:
        return pk.pass_at_k_interval(n, c, ks, target="benchmark", resamples=2000)

    def population() -> tuple[Any, Any, Any]:
        return pk.pass_at_k_interval(n, c, ks, target="population", resamples=2000)

    value, low, high = benchmark(ours)
    t_ours, t_population = own_time(benchmark), float("inf")
    for _ in range(9):
        t_ours = min(t_ours, peer_time(ours, repeats=1))
        t_population = min(t_population, peer_time(population, repeats=1))
    ratio = t_ours / t_population
    benchmark.extra_info.update(benchmark_s=t_ours, population_s=t_population, cost_vs_population=ratio,
                                width_k1=float(high[0] - low[0]), width_k128=float(high[-1] - low[-1]))
    assert np.all(low <= value) and np.all(value <= high)
    assert ratio <= 2.0, f"benchmark intervals cost {ratio:.2f}x the population bootstrap"


def _unsampled(shape: str, ks: np.ndarray, problems: int = 200) -> np.ndarray:
    """The population cells where fewer than 5 problems are expected unsolved at k (a known failure)."""
    return problems * (1.0 - SHAPES[shape].truth(ks)) < 5


def test_calibration_full_simulation(benchmark: Any) -> None:
    """Every shape, n in {8, 16, 64, 256}, 300 studies of 200 problems, both targets, 95% and 80%: the
    per-cell table of docs/metrics.md (seed 2, 1,000 resamples). Asserts the issue's bands pooled per
    shape and target; the cells outside them are listed in extra_info and in the docs."""
    ns, studies = (8, 16, 64, 256), 300

    def run() -> list[Any]:
        return [simulate(shape, n, problems=200, studies=studies, resamples=1000, seed=2) for shape in SHAPES for n in ns]

    results = benchmark.pedantic(run, rounds=1, iterations=1)
    rows, pooled_failures, cells_outside = [], [], []
    for target in ("benchmark", "population"):
        for ci, ((lo, hi), (lo_n, hi_n)) in BANDS.items():
            for shape in SHAPES:
                half_hits = half_all = n_hits = n_all = 0
                for r in (r for r in results if r.shape == shape):
                    ks, rate = np.array(r.ks), r.rate(target, ci)
                    keep = ~_unsampled(shape, ks) if target == "population" else np.ones(ks.size, bool)
                    half, at_n = (2 * ks <= r.n) & keep, (ks == r.n) & keep
                    half_hits, half_all = half_hits + rate[half].sum(), half_all + half.sum()
                    n_hits, n_all = n_hits + rate[at_n].sum(), n_all + at_n.sum()
                    rows.append(f"{target} {ci:.0%} {shape} n={r.n}: " + " ".join(f"k{k}={v:.3f}" for k, v in zip(r.ks, rate)))
                    for k, v, low, high in zip(ks, rate, np.where(ks == r.n, lo_n, lo), np.where(ks == r.n, hi_n, hi)):
                        if not low <= v <= high:
                            cells_outside.append(f"{target} {ci:.0%} {shape} n={r.n} k={k}: {v:.3f}")
                if half_all and not lo <= half_hits / half_all <= hi or n_all and not lo_n <= n_hits / n_all <= hi_n:
                    pooled_failures.append((f"{target} {ci:.0%} {shape}", f"{half_hits / max(half_all, 1):.3f} for k <= "
                                            f"n/2, {n_hits / max(n_all, 1):.3f} at k = n"))
    benchmark.extra_info.update(table="\n".join(rows), cells_outside="; ".join(cells_outside),
                                pooled_outside="; ".join(f"{key}: {why}" for key, why in pooled_failures))
    print("\n".join(rows))
    assert {key for key, _ in pooled_failures} <= KNOWN_POOLED_FAILURES, pooled_failures
