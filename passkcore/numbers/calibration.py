"""Calibration by simulation: studies drawn from known solve rates, and how often each interval covers.

A study draws P problems' solve rates from a difficulty shape (``SHAPES``), then c_i ~ Binomial(n, p_i)
per problem, and computes ``pass_at_k_interval`` for both targets. The benchmark target's truth is that
study's own mean of 1 - (1-p_i)^k; the population target's is the shape's expectation of it. Coverage
is the share of studies whose interval holds the truth. ``tests/numbers/test_calibration.py`` asserts
it on a reduced simulation; ``benches/test_intervals.py`` runs the full one (docs/metrics.md's table).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special

from passkcore.numbers.posterior_grid import pass_table
from passkcore.numbers.stats import TARGETS, PairedBootstrap

F64 = npt.NDArray[np.float64]


def _beta_truth(a: float, b: float, ks: npt.NDArray[np.int64]) -> F64:
    """E[1 - (1-p)^k] for p ~ Beta(a, b): 1 - B(a, b + k) / B(a, b)."""
    return -np.expm1(special.betaln(a, b + ks) - special.betaln(a, b))


def pass_truth(p: F64, ks: npt.NDArray[np.int64]) -> F64:
    """Mean over problems of 1 - (1-p)^k, per k (a rate of exactly 1 gives 1)."""
    return pass_table(p, ks).mean(axis=0)


@dataclass(frozen=True)
class Shape:
    """A difficulty distribution: ``draw(rng, P)`` solve rates, ``truth(ks)`` its mean pass@k."""

    name: str
    draw: Callable[[np.random.Generator, int], F64]
    truth: Callable[[npt.NDArray[np.int64]], F64]


def _mixture_draw(rng: np.random.Generator, size: int) -> F64:
    kind = rng.choice(3, size=size, p=[0.3, 0.35, 0.35])
    return np.where(kind == 0, 0.0, np.where(kind == 1, rng.beta(0.5, 8.0, size), rng.beta(4.0, 2.0, size)))


SHAPES = {
    # 30% never solvable, 35% hard (mean rate 0.06), 35% easy (mean 0.67): base models on hard math.
    "mixture": Shape("mixture", _mixture_draw,
                     lambda ks: 0.35 * _beta_truth(0.5, 8.0, ks) + 0.35 * _beta_truth(4.0, 2.0, ks)),
    "uniform": Shape("uniform", lambda rng, size: rng.random(size), lambda ks: ks / (ks + 1.0)),
    # Mostly hard, a long tail of small rates and no exact zeros: c = 0 problems that are solvable.
    "hard": Shape("hard", lambda rng, size: rng.beta(0.3, 3.0, size), lambda ks: _beta_truth(0.3, 3.0, ks)),
    # U-shaped (MATH500-like): most problems nearly always or nearly never solved.
    "u-shaped": Shape("u-shaped", lambda rng, size: rng.beta(0.25, 0.25, size), lambda ks: _beta_truth(0.25, 0.25, ks)),
}


@dataclass(frozen=True)
class Coverage:
    """Per target and ci: how many of ``studies`` intervals held the truth at each k."""

    shape: str
    n: int
    problems: int
    ks: list[int]
    studies: int
    hits: dict[tuple[str, float], npt.NDArray[np.int64]]
    widths: dict[tuple[str, float], F64]

    def rate(self, target: str, ci: float) -> F64:
        return self.hits[(target, ci)] / self.studies


def simulate(shape: str, n: int, *, problems: int = 200, studies: int = 200, ks: Sequence[int] | None = None,
             cis: Sequence[float] = (0.95, 0.8), targets: Sequence[str] = TARGETS, resamples: int = 1000,
             seed: int = 0) -> Coverage:
    """Coverage of ``pass_at_k_interval`` over ``studies`` simulated studies of one shape and n."""
    k_arr = np.array(sorted(set(ks or (1, max(1, n // 4), max(1, n // 2), n))), dtype=np.int64)
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {sorted(SHAPES)}, got {shape!r}")
    spec = SHAPES[shape]
    rng = np.random.default_rng([seed, n, len(shape)])
    population = spec.truth(k_arr)
    hits = {(t, ci): np.zeros(k_arr.size, np.int64) for t in targets for ci in cis}
    widths = {(t, ci): np.zeros(k_arr.size) for t in targets for ci in cis}
    for s in range(studies):
        p = spec.draw(rng, problems)
        c = rng.binomial(n, p)
        benchmark = pass_truth(p, k_arr)
        for t in targets:
            truth = benchmark if t == "benchmark" else population
            boot = PairedBootstrap({"m": (np.full(problems, n), c)}, resamples=resamples, seed=s, target=t)
            for ci in cis:
                band = boot.band("m", k_arr, ci)
                hits[(t, ci)] += (band.low <= truth) & (truth <= band.high)
                widths[(t, ci)] += (band.high - band.low) / studies
    return Coverage(shape, n, problems, k_arr.tolist(), studies, hits, widths)
