"""Paired bootstrap, crossings, efficiency gap and accuracy histogram."""

from __future__ import annotations

import numpy as np
import pytest

import passkcore as pk
from passkcore.numbers.coverage import Coverage
from passkcore.numbers.stats import PairedBootstrap, accuracy_histogram, numpy_bootstrap


@pytest.fixture(scope="module")
def math500() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from tests.conftest import MATH500

    cov = Coverage.from_counts(MATH500)
    return {m: cov.counts(m) for m in cov.models}


def test_bands_agree_with_numpy_bootstrap(math500) -> None:  # type: ignore[no-untyped-def]
    ks = [1, 4, 16, 64, 128]
    boot = PairedBootstrap(math500, resamples=4000, seed=3, target="population")
    ref = numpy_bootstrap([pk.pass_at_k(*math500[m], ks) for m in math500], 4000, seed=3)
    for model, theirs in zip(math500, ref):
        ours = boot.curves(model, ks)
        # Same distribution, different draws: means, spreads and percentiles agree within Monte-Carlo error.
        se = theirs.std(axis=0)
        np.testing.assert_allclose(ours.mean(axis=0), theirs.mean(axis=0), atol=4 * se.max() / np.sqrt(4000) + 1e-12)
        np.testing.assert_allclose(ours.std(axis=0), se, rtol=0.1)
        band = boot.band(model, ks, 0.95)
        lo, hi = np.quantile(theirs, [0.025, 0.975], axis=0)
        assert np.all(np.abs(band.low - lo) < 0.25 * se + 1e-12)
        assert np.all(np.abs(band.high - hi) < 0.25 * se + 1e-12)
        np.testing.assert_allclose(band.estimate, pk.pass_at_k_curve(*math500[model], ks).values, rtol=0, atol=0)


def test_resamples_are_paired_and_reproducible(math500) -> None:  # type: ignore[no-untyped-def]
    a = PairedBootstrap(math500, resamples=500, seed=11, target="population")
    b = PairedBootstrap(math500, resamples=500, seed=11, target="population")
    b.prepare(["simplerl", "base"], [1, 2])
    np.testing.assert_array_equal(a.curves("base", [1, 2]), b.curves("base", [1, 2]))
    assert not np.array_equal(a.curves("base", [1]), PairedBootstrap(math500, resamples=500, seed=12, target="population").curves("base", [1]))
    # Paired: identical models give a difference of exactly 0 in every resample.
    same = PairedBootstrap({"x": math500["base"], "y": math500["base"]}, resamples=200, seed=0, target="population")
    d = same.difference("x", "y", [1, 8])
    assert np.all(d.low == 0) and np.all(d.high == 0)


def test_multinomial_path_for_many_problems() -> None:
    rng = np.random.default_rng(0)
    c = rng.binomial(16, 0.4, 5000)  # 5000 problems, 17 distinct tuples: the multinomial path
    boot = PairedBootstrap({"m": (16, c)}, resamples=3000, seed=1, target="population")
    curves = boot.curves("m", [1, 4])
    ref = numpy_bootstrap([pk.pass_at_k(16, c, [1, 4])], 3000, seed=1)[0]
    np.testing.assert_allclose(curves.std(axis=0), ref.std(axis=0), rtol=0.1)
    np.testing.assert_allclose(curves.mean(axis=0), pk.pass_at_k(16, c, [1, 4]).mean(axis=0), atol=3e-4)


@pytest.mark.parametrize("target", ["benchmark", "population"])
def test_math500_crossing_between_8_and_16(math500, target) -> None:  # type: ignore[no-untyped-def]
    boot = PairedBootstrap(math500, resamples=2000, seed=0, target=target)
    cross = boot.crossing("simplerl", "base")
    assert (cross.a, cross.b) == ("base", "simplerl")  # base is the lower one at k = 1
    assert cross.k is not None and 8 < cross.k <= 16
    assert cross.low is not None and cross.high is not None and cross.low <= cross.k <= cross.high
    assert cross.fraction > 0.95
    curves = {m: pk.pass_at_k_curve(*math500[m], [8, 16]).values for m in math500}
    assert curves["base"][0] < curves["simplerl"][0] and curves["base"][1] > curves["simplerl"][1]


def test_no_crossing_is_reported_as_none() -> None:
    boot = PairedBootstrap({"lo": (10, [0, 1, 2]), "hi": (10, [5, 6, 10])}, resamples=100)
    cross = boot.crossing("lo", "hi")
    assert cross.k is None and cross.high is None and cross.fraction < 1


@pytest.mark.parametrize("target", ["benchmark", "population"])
def test_efficiency_gap(math500, target) -> None:  # type: ignore[no-untyped-def]
    boot = PairedBootstrap(math500, resamples=1000, seed=0, target=target)
    gap = boot.efficiency_gap("simplerl", "base", k_max=256)
    assert gap.k_max == 128  # capped at n
    assert gap.estimate == pytest.approx(0.779328125 - 0.962, abs=1e-15)
    assert gap.low < gap.estimate < gap.high


def test_accuracy_histogram() -> None:
    n = [10] * 8 + [20]
    h = accuracy_histogram(n, [0, 0, 1, 5, 9, 10, 10, 10, 19], bins=10)
    assert h.labels[0] == "0" and h.labels[-1] == "1" and len(h.labels) == 12
    assert h.labels[1] == "(0, 0.1]" and h.labels[10] == "(0.9, 1)"
    assert h.counts[0] == 2 and h.counts[-1] == 3
    assert h.counts[1] == 1  # 0.1 in (0, 0.1]
    assert h.counts[5] == 1  # 0.5 in (0.4, 0.5]
    assert h.counts[9] == 1  # 0.9 in (0.8, 0.9]
    assert h.counts[10] == 1  # 0.95 in (0.9, 1)
    assert h.counts.sum() == 9 and h.fractions.sum() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"resamples": 0}, "resamples must be"), ({"seed": -1}, "seed must be")],
)
def test_bad_bootstrap_arguments(kwargs, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        PairedBootstrap({"m": (4, [1, 2])}, **kwargs)


def test_bad_bootstrap_calls() -> None:
    boot = PairedBootstrap({"a": (4, [1, 2]), "b": (4, [0, 4])}, resamples=10)
    with pytest.raises(ValueError, match="unknown model 'c'"):
        boot.band("c", [1])
    with pytest.raises(ValueError, match="k=5 exceeds n=4"):
        boot.band("a", [5])
    with pytest.raises(ValueError, match=r"ci must be in \(0, 1\)"):
        boot.band("a", [1], ci=1.5)
    with pytest.raises(ValueError, match="two different models"):
        boot.crossing("a", "a")
    with pytest.raises(ValueError, match="has 3 problems"):
        PairedBootstrap({"a": (4, [1, 2]), "b": (4, [0, 4, 1])})
    with pytest.raises(ValueError, match="target must be one of 'benchmark', 'population', got 'problems'"):
        PairedBootstrap({"a": (4, [1, 2])}, target="problems")


def test_pass_at_k_interval_both_targets(math500) -> None:  # type: ignore[no-untyped-def]
    n, c = math500["base"]
    ks = [1, 8, 64, 128]
    point = pk.pass_at_k_curve(n, c, ks).values
    bench = pk.pass_at_k_interval(n, c, ks)
    pop = pk.pass_at_k_interval(n, c, ks, target="population")
    for value, low, high in (bench, pop):
        assert value.shape == low.shape == high.shape == (4,)
        np.testing.assert_array_equal(value, point)  # the unbiased estimate, whatever the target
        assert np.all(low < value) and np.all(value < high)
    # Problems fixed, the benchmark's own uncertainty is a fraction of the population's: under half of
    # it up to k = 64 (a tenth at k = 1), about half at k = n = 128, where never-solved problems count.
    width_b, width_p = bench[2] - bench[1], pop[2] - pop[1]
    assert np.all(width_b[:3] < 0.5 * width_p[:3]) and width_b[0] < 0.2 * width_p[0] and width_b[3] < width_p[3]
    # At k = 1 the benchmark interval matches the unbiased estimator's standard error (n = 128: ~normal).
    se = float(np.asarray(pk.pass_at_k_variance(n, c, [1]).stderr).reshape(-1)[0])
    assert bench[2][0] - bench[1][0] == pytest.approx(2 * 1.96 * se, rel=0.15)
    # Seeded: the same call gives the same interval, another seed another one.
    again = pk.pass_at_k_interval(n, c, ks)
    np.testing.assert_array_equal(again[1], bench[1])
    assert not np.array_equal(pk.pass_at_k_interval(n, c, ks, seed=1)[1], bench[1])


def test_pass_at_k_interval_at_k_equal_n_and_mixed_n() -> None:
    # Problems never solved at n = 16 may still be solvable: the upper end at k = n sits above the
    # share solved, and an all-solved benchmark stays at 1.
    n, c = np.full(300, 16), np.r_[np.zeros(60, int), np.ones(30, int), np.full(210, 8)]
    value, low, high = pk.pass_at_k_interval(n, c, 16)
    assert value[0] == pytest.approx(0.8) and low[0] <= 0.8 < high[0] < 0.9
    value, low, high = pk.pass_at_k_interval(np.full(50, 8), np.full(50, 8), [1, 8])
    np.testing.assert_allclose(high, 1.0, atol=1e-3)
    np.testing.assert_array_less(0.97, low)
    value, low, high = pk.pass_at_k_interval([8, 16, 4, 32], [1, 5, 4, 0], [1, 4])
    np.testing.assert_allclose(value, pk.pass_at_k_curve([8, 16, 4, 32], [1, 5, 4, 0], [1, 4]).values)
    assert np.all(low <= value) and np.all(value <= high)
    with pytest.raises(ValueError, match="k=5 exceeds n=4"):
        pk.pass_at_k_interval([8, 4], [1, 1], 5)
    with pytest.raises(ValueError, match="target must be one of"):
        pk.pass_at_k_interval([8], [1], 1, target="benchmarks")


def test_benchmark_differences_and_solved(math500) -> None:  # type: ignore[no-untyped-def]
    boot = PairedBootstrap(math500, resamples=1000, seed=0)
    assert boot.target == "benchmark"
    # Two models' samples are independent: identical counts give a difference centred on 0, not 0.
    same = PairedBootstrap({"x": math500["base"], "y": math500["base"]}, resamples=1000, seed=0)
    d = same.difference("x", "y", [1, 128])
    assert np.all(d.low < 0) and np.all(d.high > 0) and np.all(d.estimate == 0)
    solved = boot.solved("base", 128)
    assert solved.estimate[0] == pytest.approx(481) and solved.low[0] < 481 < solved.high[0]
    diff = boot.solved_difference("simplerl", "base", 128)
    assert diff.estimate[0] == pytest.approx(465 - 481)
    assert diff.low[0] < -16 < diff.high[0] < 0  # fewer of these 500 problems: decided for the benchmark
