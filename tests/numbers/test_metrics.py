"""G-pass@k, mG-pass@k, Bayes@N and cover@tau against exact oracles and the reference libraries."""

from __future__ import annotations

import importlib
import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

# scorio.eval re-exports functions under its modules' names: import from the modules.
from scorio.eval.bayes import bayes as scorio_bayes
from scorio.eval.gpass import g_pass_at_k_tau as scorio_g_pass_at_k_tau
from scorio.eval.gpass import mg_pass_at_k as scorio_mg_pass_at_k
from scorio.eval.pass_at_k import pass_at_k_ci

from passkcore import (
    bayes_pass_at_k,
    cover_at_tau,
    exact_g_pass_at_k,
    exact_mg_pass_at_k,
    g_pass_at_k,
    mg_pass_at_k,
    pass_at_k,
    pass_at_k_curve,
    pass_hat_k,
)
from passkcore.numbers.counts import read_counts
from passkcore.numbers.metrics import g_threshold
from tests.conftest import MATH500

DATA = MATH500
TAUS = [0.0, 0.25, 0.5, 0.7, 0.75, 1.0]


def test_threshold_follows_the_float_ceil_of_lighteval() -> None:
    assert g_threshold(100, 0.55) == 56  # 100 * 0.55 = 55.00000000000001 in float64
    assert g_threshold(4, 0.5) == 2 and g_threshold(4, 0.0) == 1 and g_threshold(8, 1.0) == 8
    # g_pass_at_k reads the same thresholds (computed for all (k, tau) at once there).
    ks, taus = [3, 7, 10, 100], [0.0, 0.1, 0.3, 0.55, 0.7, 0.9, 1.0]
    got = g_pass_at_k(100, [61], ks, taus)[0]
    for j, k in enumerate(ks):
        for t, tau in enumerate(taus):
            assert got[j, t] == pytest.approx(float(exact_g_pass_at_k(100, 61, k, g_threshold(k, tau))), rel=1e-14)


def test_g_pass_against_fraction_oracle() -> None:
    rng = np.random.default_rng(0)
    n = rng.integers(1, 40, size=60)
    c = rng.integers(0, n + 1)
    n_min = int(n.min())
    ks = [1, n_min] if n_min > 1 else [1]
    got = g_pass_at_k(n, c, ks, TAUS)
    assert got.shape == (60, len(ks), len(TAUS))
    for p in range(60):
        for j, k in enumerate(ks):
            for t, tau in enumerate(TAUS):
                exact = exact_g_pass_at_k(int(n[p]), int(c[p]), k, g_threshold(k, tau))
                assert got[p, j, t] == pytest.approx(float(exact), rel=1e-14, abs=1e-300)


def test_g_pass_edges_are_pass_at_k_and_pass_hat_k() -> None:
    n, c = 50, np.arange(51)
    np.testing.assert_allclose(g_pass_at_k(n, c, [1, 7, 50], 0.0), pass_at_k(n, c, [1, 7, 50]), rtol=1e-14)
    np.testing.assert_allclose(g_pass_at_k(n, c, [1, 7, 50], 1.0), pass_hat_k(n, c, [1, 7, 50]), rtol=1e-13, atol=1e-300)


def test_tiny_tails_keep_relative_precision() -> None:
    # n = 2000, c = 3, k = 3: P(all 3) = 1/C(2000, 3), ~7.5e-10; float64 cancellation would lose it.
    exact = exact_g_pass_at_k(2000, 3, 3, 3)
    assert g_pass_at_k(2000, [3], 3, 1.0)[0] == pytest.approx(float(exact), rel=1e-14)


def test_mg_pass_against_oracle() -> None:
    for n, c in [(10, 0), (10, 3), (10, 7), (16, 16), (33, 20)]:
        ks = list(range(1, n + 1))
        got = mg_pass_at_k(n, [c], ks)[0]
        for j, k in enumerate(ks):
            assert got[j] == pytest.approx(float(exact_mg_pass_at_k(n, c, k)), rel=1e-14, abs=1e-300)
    assert mg_pass_at_k(8, [8], 1)[0] == 0.0  # the sum from ceil(1/2)+1 = 2 to 1 is empty


def test_g_pass_matches_lighteval() -> None:
    """lighteval 0.13, installed by `make install` with --no-deps (its own requirements pin
    latex2sympy2_extended below math-verify's)."""
    metrics_sample = importlib.import_module("lighteval.metrics.metrics_sample")
    ks, taus = [1, 4, 10, 16], [0.0, 0.25, 0.5, 0.55, 0.7, 0.75, 1.0]
    rng = np.random.default_rng(1)
    for c in rng.integers(0, 33, size=12):
        scores = [1] * int(c) + [0] * (32 - int(c))
        ref = metrics_sample.GPassAtK(k=ks, n=32, thresholds=taus).g_pass_at_k(scores)
        for k in ks:
            for t in taus:
                assert g_pass_at_k(32, [c], k, t)[0] == pytest.approx(ref[f"g-pass@{k}_{t}"], abs=1e-12)
            assert mg_pass_at_k(32, [c], k)[0] == pytest.approx(ref[f"mg-pass@{k}"], abs=1e-12)


def test_g_pass_matches_scorio() -> None:
    """scorio 0.2.3 (dev extra, so this always runs) implements G-Pass@k_tau and mG-Pass@k too. Its
    threshold reads tau = j/k as exactly j (tau = 0.55, k = 100 asks 55 there, 56 here and in
    lighteval, from the float64 ceil), so the shared cases are those where both read the same m."""
    rng = np.random.default_rng(3)
    R = (rng.random((30, 24)) < rng.beta(0.6, 0.6, size=(30, 1))).astype(int)
    c = R.sum(axis=1)
    for k in [1, 3, 8, 24]:
        for t in [0.0, 0.25, 0.5, 0.7, 0.75, 1.0]:
            # A shared case: the float64 ceil equals the ceil of the decimal tau times k.
            assert g_threshold(k, t) == max(math.ceil(Fraction(str(t)) * k), 1)
            assert float(g_pass_at_k(24, c, k, t).mean()) == pytest.approx(scorio_g_pass_at_k_tau(R, k, t), abs=1e-12)
        assert float(mg_pass_at_k(24, c, k).mean()) == pytest.approx(scorio_mg_pass_at_k(R, k), abs=1e-12)


def _beta_ratio(a: int, b: int, k: int) -> Fraction:
    """E[(1-p)^k] under Beta(a, b) with integer parameters, exactly."""
    out = Fraction(1)
    for i in range(k):
        out *= Fraction(b + i, a + b + i)
    return out


def test_bayes_mean_and_variance_exact_for_integer_priors() -> None:
    n = np.array([5, 12, 40, 40, 7])
    c = np.array([0, 12, 13, 40, 3])
    ks = [1, 3, 9, 64]  # k may exceed n
    res = bayes_pass_at_k(n, c, ks, prior=(2, 3))
    var_sum = np.zeros(len(ks))
    for p in range(n.size):
        a, b = 2 + int(c[p]), 3 + int(n[p] - c[p])
        for j, k in enumerate(ks):
            q, q2 = _beta_ratio(a, b, k), _beta_ratio(a, b, 2 * k)
            assert res.mean[p, j] == pytest.approx(float(1 - q), rel=1e-15)
            var_sum[j] += float(q2 - q * q)
    np.testing.assert_allclose(res.overall_std, np.sqrt(var_sum) / n.size, rtol=1e-12)
    np.testing.assert_allclose(res.overall_mean, res.mean.mean(axis=0), rtol=1e-15)


def _beta_ratio_real(a: Fraction, b: Fraction, k: int) -> Fraction:
    """E[(1-p)^k] under Beta(a, b) for rational a, b, exactly."""
    out = Fraction(1)
    for i in range(k):
        out *= (b + i) / (a + b + i)
    return out


@pytest.mark.parametrize("n_max", [70_000, (1 << 20) + 5])  # prefix products; past 2^20 the per-pair chains
def test_bayes_moments_exact_for_real_priors_and_large_n(n_max: int) -> None:
    """Non-integer prior, n varying up to n_max, narrow posteriors whose
    variance cancels: the mean to 1e-15 and the variance to 1e-10 relative of the exact rationals."""
    n = np.array([3, 64, 64, 999, n_max, n_max])
    c = np.array([1, 0, 64, 500, n_max // 2, 7])
    ks, prior = [1, 2, 7, 40], (0.1, 0.2)  # the exact sum 0.1 + 0.2 is no double: a + b is carried as two
    res = bayes_pass_at_k(n, c, ks, prior=prior)
    var_sum = [Fraction(0)] * len(ks)
    for p in range(n.size):
        # The posterior of the prior's binary values: a + c is not rounded to a double first.
        a, b = Fraction(prior[0]) + int(c[p]), Fraction(prior[1]) + int(n[p] - c[p])
        for j, k in enumerate(ks):
            q, q2 = _beta_ratio_real(a, b, k), _beta_ratio_real(a, b, 2 * k)
            assert res.mean[p, j] == pytest.approx(float(1 - q), rel=1e-15, abs=1e-300)
            var_sum[j] += q2 - q * q
    np.testing.assert_allclose(res.overall_std, [math.sqrt(v) / n.size for v in var_sum], rtol=1e-10)


def test_bayes_extreme_priors_stay_probabilities() -> None:
    """Priors from subnormal to 1e15 (the bound): means in [0, 1], within 1e-30 absolute of the exact value."""
    n, c, ks = np.array([1, 5, 40, 40]), np.array([0, 5, 13, 40]), [1, 3, 17, 80]
    for prior in [(1e-300, 1e-300), (5e-324, 2.0), (1e6, 3.5), (1e15, 1e15), (0.5, 1e-310), (3.0, 1e15)]:
        res = bayes_pass_at_k(n, c, ks, prior=prior)
        assert np.all((res.mean >= 0) & (res.mean <= 1)) and np.all(np.isfinite(res.overall_std))
        for p in range(n.size):
            a, b = Fraction(prior[0]) + int(c[p]), Fraction(prior[1]) + int(n[p] - c[p])
            for j, k in enumerate(ks):
                exact = float(1 - _beta_ratio_real(a, b, k))
                assert res.mean[p, j] == pytest.approx(exact, rel=1e-14, abs=1e-30)


def test_bayes_interval_is_the_beta_quantile_interval() -> None:
    stats = pytest.importorskip("scipy.stats")
    n, c = np.array([10, 128, 3, 1000]), np.array([4, 127, 0, 1])
    res = bayes_pass_at_k(n, c, [1, 8], prior=(0.5, 0.5), ci=0.9)
    for p in range(n.size):
        lo, hi = stats.beta.ppf([0.05, 0.95], 0.5 + c[p], 0.5 + n[p] - c[p])
        for j, k in enumerate([1, 8]):
            assert res.low[p, j] == pytest.approx(1 - (1 - lo) ** k, rel=1e-9)
            assert res.high[p, j] == pytest.approx(1 - (1 - hi) ** k, rel=1e-9)
    assert np.all(res.low <= res.high)  # (the mean may lie outside: g = 1-(1-p)^k is skewed)
    mean, low, high = res  # unpacks as the contract's (mean, low, high)
    assert mean.shape == low.shape == high.shape == (4, 2)


def test_bayes_per_problem_values_follow_their_pair_not_their_position() -> None:
    """The posterior is computed once per distinct (n, c) and scattered back; the lazy interval too."""
    rng = np.random.default_rng(5)
    n = rng.choice([8, 30, 31], size=300)
    c = rng.binomial(n, 0.4)
    res = bayes_pass_at_k(n, c, [1, 5])
    assert "interval" not in vars(res)  # the quantiles wait until asked for
    low, high = res.low, res.high
    assert "interval" in vars(res) and res.low is low  # computed once, then kept
    for p in rng.choice(n.size, size=20, replace=False):
        one = bayes_pass_at_k(int(n[p]), int(c[p]), [1, 5])
        np.testing.assert_array_equal(res.mean[p], one.mean[0])
        np.testing.assert_array_equal(low[p], one.low[0])
        np.testing.assert_array_equal(high[p], one.high[0])
    scalar = bayes_pass_at_k(n, c, 5)
    assert scalar.low.shape == scalar.high.shape == scalar.mean.shape == (300,)
    np.testing.assert_array_equal(scalar.high, high[:, 1])
    np.testing.assert_allclose(res.overall_mean, res.mean.mean(axis=0), rtol=1e-14)


def test_bayes_matches_scorio() -> None:
    rng = np.random.default_rng(2)
    R = (rng.random((40, 16)) < rng.random((40, 1))).astype(int)
    c = R.sum(axis=1)
    for k in (1, 2, 5, 16):
        for prior in ((1.0, 1.0), (0.5, 2.0)):
            mu, sigma, lo, hi = pass_at_k_ci(R, k, confidence=0.9, alpha0=prior[0], beta0=prior[1])
            ours = bayes_pass_at_k(16, c, k, prior=prior, ci=0.9)
            assert ours.overall_mean == pytest.approx(mu, abs=1e-12)
            assert ours.overall_std == pytest.approx(sigma, abs=1e-12)
            assert (ours.overall_low, ours.overall_high) == pytest.approx((lo, hi), abs=1e-12)
    mu, sigma = scorio_bayes(R)  # Bayes@N's mean at k = 1 with the uniform prior
    assert bayes_pass_at_k(16, c, 1).overall_mean == pytest.approx(mu, abs=1e-12)


def test_cover_definition_and_relation_to_pass_at_k() -> None:
    models = read_counts(DATA)
    for m in models.values():
        n = int(m.n[0])
        taus = np.linspace(0, 1, 101)
        got = cover_at_tau(m.n, m.c, taus)
        np.testing.assert_array_equal(got, [(m.c / m.n >= t).mean() for t in taus])
        # cover@(1/n) = mean pass@n, cover@1 = mean pass^n, area under cover = mean pass@1.
        assert cover_at_tau(m.n, m.c, 1 / n) == pytest.approx(pass_at_k_curve(m.n, m.c, [n]).values[0], abs=1e-15)
        assert cover_at_tau(m.n, m.c, 1.0) == pytest.approx(pass_hat_k(m.n, m.c, n).mean(), abs=1e-15)
        steps = np.arange(1, n + 1) / n
        area = cover_at_tau(m.n, m.c, steps).sum() / n
        assert area == pytest.approx(pass_at_k_curve(m.n, m.c, [1]).values[0], rel=1e-12)
    assert isinstance(cover_at_tau(4, [1, 2], 0.5), float)


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda: g_pass_at_k(10, [3, 11], 2, 0.5), ValueError, r"c\[1\] exceeds n"),
    (lambda: g_pass_at_k(10, [3], 11, 0.5), ValueError, "k=11 exceeds"),
    (lambda: g_pass_at_k(10, [3], 2, 1.5), ValueError, r"tau\[0\]"),
    (lambda: g_pass_at_k(10, [3], 2, "x"), TypeError, "tau"),
    (lambda: mg_pass_at_k(10, [-1], 2), ValueError, r"c\[0\] must be non-negative"),
    (lambda: bayes_pass_at_k(10, [3], 2, prior=(0, 1)), ValueError, "prior"),
    (lambda: bayes_pass_at_k(10, [3], 2, ci=1.0), ValueError, "ci"),
    (lambda: bayes_pass_at_k(10, [3], 2, prior=(1e300, 1e300)), ValueError, "prior must be at most 1e15"),
    (lambda: bayes_pass_at_k(10, [3], 0), ValueError, r"k\[0\] must be at least 1 \(k=0\)"),
    (lambda: bayes_pass_at_k(10, [3], [2, 5, -1]), ValueError, r"k\[2\] must be at least 1 \(k=-1\)"),
    (lambda: bayes_pass_at_k(10, [3], []), ValueError, "k is empty"),
    (lambda: bayes_pass_at_k(10, [3], [1.5]), ValueError, r"k\[0\] is not an integer"),
    (lambda: bayes_pass_at_k([0], [0], 1), ValueError, r"n\[0\] must be at least 1"),
    # Bayes@N leaves the count checks to its native call: same messages, same first index.
    (lambda: bayes_pass_at_k(10, [3, 11, 12], 2), ValueError, r"c\[1\] exceeds n \(n=10, c=11\)"),
    (lambda: bayes_pass_at_k([10, 5, 7], [3, 2, -1], 1), ValueError, r"c\[2\] must be non-negative"),
    (lambda: bayes_pass_at_k([4, 2**31], [1, 1], 1), ValueError, r"n\[1\] exceeds 2\^31 - 1"),
    (lambda: bayes_pass_at_k(10, [3.5], 1), ValueError, r"c\[0\] is not an integer"),
    (lambda: bayes_pass_at_k(10, [True], 1), TypeError, "c must hold integer counts"),
    (lambda: bayes_pass_at_k([10, 10], [3], 1), ValueError, "differ in length"),
    (lambda: cover_at_tau(10, [3.5], 0.5), ValueError, "not an integer"),
    (lambda: cover_at_tau(10, [3], float("nan")), ValueError, "tau"),
])
def test_bad_input(call: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call()


def test_scalar_shapes() -> None:
    assert g_pass_at_k(10, [3, 4], 5, 0.5).shape == (2,)
    assert g_pass_at_k(10, [3, 4], [5], [0.5, 1.0]).shape == (2, 1, 2)
    assert mg_pass_at_k(10, [3, 4], [2, 5]).shape == (2, 2)
    b = bayes_pass_at_k([10, 20], [3, 4], 5)
    assert b.mean.shape == (2,) and isinstance(b.overall_mean, float)
    assert math.isclose(b[0][0], b.mean[0])
