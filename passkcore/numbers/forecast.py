"""pass@K beyond the sampled n: a zero-inflated beta-binomial fitted to (n, c) by maximum likelihood.

Model: a problem's success rate p is 0 with probability ``pi0`` (problems the model never solves) and
otherwise Beta(alpha, beta); given p, c ~ Binomial(n, p). The three parameters maximise the likelihood
of all problems' (n, c) (n may differ per problem). A problem's forecast pass@K is its posterior mean
of 1 - (1-p)^K (empirical Bayes): for c > 0, p ~ Beta(alpha + c, beta + n - c); for c = 0, the
posterior keeps mass ``w = (1-pi0) BB(0) / (pi0 + (1-pi0) BB(0))`` on Beta(alpha, beta + n). The
forecast is their mean over problems, with a percentile bootstrap over problems (refitting each time).

Why zero inflation: a plain Beta must put a smooth density near p = 0, so every never-solved problem
still gets a sizeable chance of being solved once K is large. On MATH500 base-model counts thinned to
n = 32, the plain beta-binomial forecasts pass@128 above what the full n = 128 data give (the issue's
0.979 [0.969, 0.987] against 0.962), while the zero-inflated fit brackets it (README, measured).
The fit uses scipy (a lazy import: ``pip install scipy``); the posterior moments come from the native core.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any, NamedTuple, Optional, Union

import numpy as np
import numpy.typing as npt

from passkcore._native import core
from passkcore.numbers.inputs import Counts, counts_pair, ks_array

FloatArray = npt.NDArray[np.float64]


class ZIBBFit(NamedTuple):
    """Maximum-likelihood zero-inflated beta-binomial: P(p = 0) = pi0, else p ~ Beta(alpha, beta)."""

    pi0: float
    alpha: float
    beta: float
    loglik: float


class Forecast(NamedTuple):
    """Forecast mean pass@K over problems and its bootstrap interval (floats, or ``(K,)`` arrays)."""

    value: Union[float, FloatArray]
    low: Union[float, FloatArray]
    high: Union[float, FloatArray]


class ForecastCrossing(NamedTuple):
    """The first K at which model a's forecast pass@K reaches model b's (a below b at K = 1), or None;
    the bootstrap percentile interval of that K over the resamples where it occurs, and their share."""

    k: Optional[int]
    low: Optional[int]
    high: Optional[int]
    fraction_of_resamples: float


def _scipy() -> tuple[Any, Any]:
    try:
        from scipy import optimize, special
    except ImportError as exc:  # pragma: no cover - scipy is in the dev extra
        raise ImportError("forecast_pass_at_k fits by maximum likelihood with scipy: pip install scipy") from exc
    return optimize, special


def _negloglik(theta: FloatArray, n: FloatArray, c: FloatArray, w: FloatArray, zero_inflated: bool) -> tuple[float, FloatArray]:
    """Weighted negative log-likelihood and its gradient in (logit pi0, log alpha, log beta); the
    analytic gradient (digammas) makes a fit ~20 function calls instead of ~100 with differences."""
    _, special = _scipy()
    a, b = np.exp(theta[1]), np.exp(theta[2])
    log_bb = special.betaln(c + a, n - c + b) - special.betaln(a, b) + special.gammaln(n + 1) - special.gammaln(c + 1) - special.gammaln(n - c + 1)
    psi_ab, psi_nab = special.digamma(a + b), special.digamma(n + a + b)
    d_a = a * (special.digamma(c + a) - psi_nab - special.digamma(a) + psi_ab)  # d log BB / d log alpha
    d_b = b * (special.digamma(n - c + b) - psi_nab - special.digamma(b) + psi_ab)
    if zero_inflated:
        pi = 1.0 / (1.0 + np.exp(-theta[0]))
        log_pi = -np.logaddexp(0.0, -theta[0])
        log_rest = -np.logaddexp(0.0, theta[0])
        zero = c == 0
        ll = np.where(zero, np.logaddexp(log_pi, log_rest + log_bb), log_rest + log_bb)
        # share of a c = 0 problem's likelihood that comes from the Beta part
        r = np.where(zero, np.exp(log_rest + log_bb - ll), 1.0)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            g0 = np.where(zero, pi * (1 - pi) * (1 - np.exp(log_bb)) * np.exp(-ll), -pi)
        grad = np.array([(w * g0).sum(), (w * r * d_a).sum(), (w * r * d_b).sum()])
    else:
        ll = log_bb
        grad = np.array([0.0, (w * d_a).sum(), (w * d_b).sum()])
    return float(-(w * ll).sum()), -grad


def _fit(n: FloatArray, c: FloatArray, w: FloatArray, zero_inflated: bool, start: Optional[FloatArray] = None) -> tuple[FloatArray, float]:
    optimize, _ = _scipy()
    if start is None:
        solved = w * (c > 0)
        rate = float((w * c / n).sum() / max(w.sum(), 1e-300))
        pi0 = float(np.clip(1.0 - solved.sum() / w.sum(), 0.01, 0.99)) if zero_inflated else 0.5
        start = np.array([np.log(pi0 / (1 - pi0)), np.log(max(rate, 0.05)), np.log(max(1 - rate, 0.05))])
    bounds = [(-30.0, 30.0), (-12.0, 12.0), (-12.0, 12.0)]
    # TNC: L-BFGS-B's Fortran step cost ~8 ms per call here (10x the likelihood itself).
    res = optimize.minimize(_negloglik, start, args=(n, c, w, zero_inflated), jac=True, method="TNC", bounds=bounds)
    return res.x, float(res.fun)


def fit_zibb(n: Counts, c: Counts, *, zero_inflated: bool = True) -> ZIBBFit:
    """Maximum-likelihood (pi0, alpha, beta) of the counts; ``zero_inflated=False`` fixes pi0 = 0."""
    n_arr, c_arr = counts_pair(n, c)
    pn, pcc, count, _ = core.distinct_pairs(n_arr, c_arr)
    theta, nll = _fit(pn.astype(float), pcc.astype(float), count.astype(float), zero_inflated)
    pi0 = float(1.0 / (1.0 + np.exp(-theta[0]))) if zero_inflated else 0.0
    return ZIBBFit(pi0, float(np.exp(theta[1])), float(np.exp(theta[2])), -nll)


def _pair_values(theta: FloatArray, pn: npt.NDArray[np.int64], pc: npt.NDArray[np.int64], ks: npt.NDArray[np.int64],
                 zero_inflated: bool) -> FloatArray:
    """Posterior mean pass@K per distinct pair, (D, K)."""
    _, special = _scipy()
    a, b = float(np.exp(theta[1])), float(np.exp(theta[2]))
    mean, _ = core.bayes_moments(pn, pc, ks, a, b)
    if zero_inflated:
        pi0 = 1.0 / (1.0 + np.exp(-theta[0]))
        bb0 = np.exp(special.betaln(a, pn + b) - special.betaln(a, b))
        weight = np.where(pc == 0, (1 - pi0) * bb0 / (pi0 + (1 - pi0) * bb0), 1.0)
        mean = mean * weight[:, None]
    return mean


class _Refits(NamedTuple):
    """The full-data fit and every bootstrap refit of one model's counts (parameters only: the
    resamples' pair weights are drawn again from the seed, so memory stays resamples x 3)."""

    theta: FloatArray
    thetas: FloatArray  # (resamples, 3)


# The refits are the whole cost of a forecast (~5 ms each, 200 per model in a report) and do not depend
# on the ks: a report forecasts each model at 2n and 4n and again, against the base, at every K up to
# 4n, with the base in every pair. The refits of a few recent models are kept, keyed by a digest.
_REFITS: dict[tuple[bytes, int, int, bool], _Refits] = {}
_REFITS_KEPT = 8


def _resample_weights(inverse: npt.NDArray[np.int64], pairs: int, resamples: int, seed: int) -> Iterator[FloatArray]:
    """Each bootstrap resample of the problems as a count per distinct pair, in seed order."""
    rng = np.random.default_rng(seed)
    P = inverse.size
    for _ in range(resamples):
        yield np.bincount(inverse[rng.integers(0, P, size=P)], minlength=pairs).astype(float)


def _refits(n_arr: npt.NDArray[np.int64], c_arr: npt.NDArray[np.int64], pairs: tuple[npt.NDArray[np.int64], ...],
            resamples: int, seed: int, zero_inflated: bool) -> _Refits:
    digest = hashlib.blake2b(n_arr.tobytes() + b"|" + c_arr.tobytes(), digest_size=16).digest()
    key = (digest, resamples, seed, zero_inflated)
    if key in _REFITS:
        return _REFITS[key]
    pn, pcc, count, inverse = pairs
    fn, fc = pn.astype(float), pcc.astype(float)
    theta, _ = _fit(fn, fc, count.astype(float), zero_inflated)
    thetas = np.empty((resamples, 3))
    for r, w in enumerate(_resample_weights(inverse, pn.size, resamples, seed)):
        thetas[r], _ = _fit(fn, fc, w, zero_inflated, start=theta)
    if len(_REFITS) >= _REFITS_KEPT:
        del _REFITS[next(iter(_REFITS))]
    _REFITS[key] = out = _Refits(theta, thetas)
    return out


def _forecast_curves(n: Counts, c: Counts, ks: npt.NDArray[np.int64], resamples: int, seed: int,
                     zero_inflated: bool) -> tuple[FloatArray, FloatArray]:
    """Full-data forecast (K,) and the bootstrap resamples' forecasts (resamples, K)."""
    n_arr, c_arr = counts_pair(n, c)
    pairs = core.distinct_pairs(n_arr, c_arr)
    pn, pcc, count, inverse = pairs
    fits = _refits(n_arr, c_arr, pairs, resamples, seed, zero_inflated)
    value = count @ _pair_values(fits.theta, pn, pcc, ks, zero_inflated) / n_arr.size
    boots = np.empty((resamples, ks.size))
    for r, w in enumerate(_resample_weights(inverse, pn.size, resamples, seed)):
        boots[r] = w @ _pair_values(fits.thetas[r], pn, pcc, ks, zero_inflated) / n_arr.size
    return value, boots


def _check_resamples(resamples: int, ci: float) -> None:
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)) or resamples < 1:
        raise ValueError(f"resamples must be a positive integer, got {resamples!r}")
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must be in (0, 1), got {ci}")


def forecast_pass_at_k(n: Counts, c: Counts, ks: Counts, resamples: int = 1000, seed: int = 0, *, ci: float = 0.95,
                       zero_inflated: bool = True) -> Forecast:
    """Forecast mean pass@K over problems at any K (also K > n) from the zero-inflated beta-binomial
    fit, with a ``ci`` percentile bootstrap over problems (``resamples`` refits, seeded)."""
    _check_resamples(resamples, ci)
    k_arr = ks_array(ks)
    value, boots = _forecast_curves(n, c, k_arr, int(resamples), seed, zero_inflated)
    low, high = np.quantile(boots, [(1 - ci) / 2, (1 + ci) / 2], axis=0)
    if np.ndim(np.asarray(ks)) == 0:
        return Forecast(float(value[0]), float(low[0]), float(high[0]))
    return Forecast(value, low, high)


def _first_crossing(a: FloatArray, b: FloatArray, ks: npt.NDArray[np.int64]) -> Optional[int]:
    if a[0] >= b[0]:
        a, b = b, a
    hit = np.flatnonzero(a >= b)
    return int(ks[hit[0]]) if hit.size else None


def forecast_crossing(n_a: Counts, c_a: Counts, n_b: Counts, c_b: Counts, kmax: Optional[int] = None,
                      resamples: int = 1000, seed: int = 0, *, ci: float = 0.95) -> ForecastCrossing:
    """The smallest K at which the model lower at K = 1 reaches the other's forecast pass@K, searched over
    K = 1..kmax (default 16 times the largest n), with its bootstrap interval (models resampled independently)."""
    _check_resamples(resamples, ci)
    if kmax is None:
        kmax = 16 * int(max(np.max(np.asarray(n_a)), np.max(np.asarray(n_b))))
    ks = np.arange(1, int(kmax) + 1, dtype=np.int64)
    va, ba = _forecast_curves(n_a, c_a, ks, int(resamples), seed, True)
    vb, bb = _forecast_curves(n_b, c_b, ks, int(resamples), seed + 1, True)
    k = _first_crossing(va, vb, ks)
    hits = [x for x in (_first_crossing(ba[r], bb[r], ks) for r in range(int(resamples))) if x is not None]
    if not hits:
        return ForecastCrossing(k, None, None, 0.0)
    lo, hi = np.quantile(hits, [(1 - ci) / 2, (1 + ci) / 2], method="inverted_cdf")
    return ForecastCrossing(k, int(lo), int(hi), len(hits) / int(resamples))
