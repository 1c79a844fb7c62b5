"""pass@K beyond n: the zero-inflated beta-binomial fit, the MATH500 thinning check, crossings."""

from __future__ import annotations

import numpy as np
import pytest

from passkcore import fit_zibb, forecast_crossing, forecast_pass_at_k, pass_at_k_curve
from passkcore.numbers.counts import read_counts
from tests.conftest import MATH500

DATA = MATH500


def test_fit_recovers_simulated_parameters() -> None:
    rng = np.random.default_rng(0)
    P, n = 6000, 64
    p = np.where(rng.random(P) < 0.2, 0.0, rng.beta(0.8, 1.5, size=P))
    fit = fit_zibb(n, rng.binomial(n, p))
    assert fit.pi0 == pytest.approx(0.2, abs=0.03)
    assert fit.alpha == pytest.approx(0.8, rel=0.15) and fit.beta == pytest.approx(1.5, rel=0.15)
    plain = fit_zibb(n, rng.binomial(n, p), zero_inflated=False)
    assert plain.pi0 == 0.0 and plain.loglik < fit.loglik


@pytest.mark.slow
@pytest.mark.parametrize("model", ["base", "simplerl"])
def test_thinned_math500_forecast_brackets_the_full_data(model: str) -> None:
    """Counts thinned to n = 32 (hypergeometrically, seeded) forecast pass@128 with an interval that
    holds the unbiased pass@128 of the full n = 128 counts."""
    m = read_counts(DATA)[model]
    full = pass_at_k_curve(m.n, m.c, [128]).values[0]
    c32 = np.random.default_rng(0).hypergeometric(m.c, m.n - m.c, 32)
    f = forecast_pass_at_k(32, c32, 128, resamples=1000, seed=0)
    assert f.low <= full <= f.high, (f, full)
    assert f.high - f.low < 0.08


def test_forecast_within_n_agrees_with_the_unbiased_curve() -> None:
    m = read_counts(DATA)["base"]
    ks = np.array([1, 8, 64])
    f = forecast_pass_at_k(m.n, m.c, ks, resamples=20, seed=1)
    np.testing.assert_allclose(f.value, pass_at_k_curve(m.n, m.c, ks).values, atol=0.01)
    assert np.all(f.low <= f.value) and np.all(f.value <= f.high)
    assert np.all(np.diff(f.value) > 0)


def test_crossing_on_math500_matches_the_observed_curves() -> None:
    models = read_counts(DATA)
    a, b = models["base"], models["simplerl"]
    ks = np.arange(1, 129)
    ca, cb = pass_at_k_curve(a.n, a.c, ks).values, pass_at_k_curve(b.n, b.c, ks).values
    lower, upper = (ca, cb) if ca[0] < cb[0] else (cb, ca)
    observed = int(ks[np.flatnonzero(lower >= upper)[0]])
    cross = forecast_crossing(a.n, a.c, b.n, b.c, kmax=512, resamples=100, seed=0)
    assert cross.k is not None and cross.low is not None and cross.high is not None
    assert cross.low <= observed <= cross.high and cross.low <= cross.k <= cross.high
    assert cross.fraction_of_resamples > 0.9


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="resamples"):
        forecast_pass_at_k(10, [3], 20, resamples=0)
    with pytest.raises(ValueError, match=r"k\[0\] must be at least 1"):
        forecast_pass_at_k(10, [3], 0)
    with pytest.raises(ValueError, match=r"c\[1\] exceeds n"):
        forecast_pass_at_k(10, [3, 11], 20)
    with pytest.raises(ValueError, match="ci"):
        forecast_pass_at_k(10, [3], 20, ci=1.5)
