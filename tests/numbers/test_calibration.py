"""Calibration of both interval targets by simulation (issue 39): a reduced version of the benchmark's
full table (benches/test_intervals.py). Studies of 200 problems are drawn from known solve rates;
coverage is pooled over each target's studies, ns and ks, where the Monte-Carlo error is ~0.5 points.

One known failure, kept visible: the population target where fewer than 5 of the 200 problems are
expected to stay unsolved at k (uniform rates, n = 256, k >= 64). The population's pass@k there is
decided by a tail of near-zero rates that 200 problems barely sample, and a bootstrap over problems
cannot reach past what it saw (all solved: an interval at 1). ``test_population_where_its_tail_is_unsampled``
is a strict xfail that says so; docs/metrics.md lists the cells."""

from __future__ import annotations

import numpy as np
import pytest

from passkcore.numbers.calibration import SHAPES, pass_truth, simulate

SHAPE_NAMES = ("mixture", "uniform", "hard")  # the mixture has 30% unsolvable problems
NS = (8, 32, 256)
STUDIES = 120
# (nominal, (low, high) for k <= n/2, (low, high) at k = n): issue 39's bands for 95%; for 80%, the
# same rule: +-3 points for k <= n/2 and a wider band at k = n, where c = 0 does not mean p = 0.
BANDS = {0.95: ((0.93, 0.97), (0.90, 0.99)), 0.8: ((0.77, 0.83), (0.72, 0.90))}


@pytest.fixture(scope="module")
def results() -> list:  # type: ignore[type-arg]
    return [simulate(shape, n, problems=200, studies=STUDIES, resamples=1000, seed=1)
            for shape in SHAPE_NAMES for n in NS]


def _unsampled(shape: str, problems: int, ks: np.ndarray) -> np.ndarray:
    """Where fewer than 5 problems are expected to stay unsolved at k: P x E[(1-p)^k] < 5."""
    return problems * (1.0 - SHAPES[shape].truth(ks)) < 5


def _pooled(results: list, target: str, ci: float, at_n: bool, shape: str = "",  # type: ignore[type-arg]
            tail: bool = False) -> float:
    hits = studies = 0
    for cov in results:
        if shape and cov.shape != shape:
            continue
        ks = np.array(cov.ks)
        cols = ks == cov.n if at_n else 2 * ks <= cov.n
        if target == "population":
            cols &= _unsampled(cov.shape, cov.problems, ks) == tail
        hits += int(cov.hits[(target, ci)][cols].sum())
        studies += cov.studies * int(cols.sum())
    return hits / studies


@pytest.mark.slow
@pytest.mark.parametrize("target", ["benchmark", "population"])
@pytest.mark.parametrize("ci", [0.95, 0.8])
def test_intervals_cover_at_their_level(results, target, ci) -> None:  # type: ignore[no-untyped-def]
    (lo, hi), (lo_n, hi_n) = BANDS[ci]
    rate = _pooled(results, target, ci, at_n=False)
    assert lo <= rate <= hi, f"{target} {ci:.0%} intervals cover {rate:.1%} for k <= n/2"
    rate = _pooled(results, target, ci, at_n=True)
    assert lo_n <= rate <= hi_n, f"{target} {ci:.0%} intervals cover {rate:.1%} at k = n"
    # No shape may hide behind the others: each within 2 points more (its pool is 3x smaller).
    for shape in SHAPE_NAMES:
        rate = _pooled(results, target, ci, at_n=False, shape=shape)
        assert lo - 0.02 <= rate <= hi + 0.02, f"{target} {ci:.0%} on {shape}: {rate:.1%} for k <= n/2"


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="population intervals where < 5 problems are expected unsolved at k "
                                       "(uniform, n = 256, k >= 64): a bootstrap over problems cannot reach "
                                       "a tail it did not sample")
def test_population_where_its_tail_is_unsampled(results) -> None:  # type: ignore[no-untyped-def]
    assert _pooled(results, "population", 0.95, at_n=True, tail=True) >= 0.90


@pytest.mark.slow
def test_benchmark_intervals_are_narrower(results) -> None:  # type: ignore[no-untyped-def]
    # The point of the benchmark target: the same studies, narrower intervals at every k; at k = 1 less
    # than half as wide once n >= 32 (at n = 8 the samples' own noise is ~half the population's).
    for cov in results:
        bench, pop = cov.widths[("benchmark", 0.95)], cov.widths[("population", 0.95)]
        assert np.all(bench < pop), (cov.shape, cov.n)
        if cov.n >= 32:
            assert bench[0] < 0.5 * pop[0], (cov.shape, cov.n)


def test_shapes_truth_matches_their_draws() -> None:
    # The population truth of each shape is its expectation: checked against 200,000 draws.
    rng = np.random.default_rng(0)
    ks = np.array([1, 4, 64])
    for shape in SHAPES.values():
        p = shape.draw(rng, 200_000)
        empirical = pass_truth(p, ks)
        np.testing.assert_allclose(shape.truth(ks), empirical, atol=4e-3)


def test_an_unknown_shape_is_named() -> None:
    with pytest.raises(ValueError, match="shape must be one of"):
        simulate("bimodal", 8, studies=1)
