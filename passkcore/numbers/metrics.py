"""G-pass@k, mG-pass@k, Bayesian pass@k (Bayes@N) and cover@tau from per-problem (n, c) counts.

* ``g_pass_at_k``: Liu et al. 2024, "Are Your LLMs Capable of Stable Reasoning?" (arXiv:2412.13147):
  the hypergeometric chance that at least ``m = max(ceil(tau * k), 1)`` of k draws without replacement
  are correct. ``ceil(tau * k)`` is taken of the float64 product, as lighteval (0.13) and the authors'
  code do: ``tau = 0.55, k = 100`` gives ``m = 56`` because ``0.55 * 100 = 55.00000000000001``.
* ``mg_pass_at_k``: ``(2 / k) * sum_{i = ceil(k/2) + 1}^{k} P(X >= i)``, the paper's discrete form of
  ``2 * integral_{0.5}^{1} G-pass@k_tau dtau`` (lighteval's definition; mG-pass@1 is 0 there).
* ``bayes_pass_at_k``: Bayes@N (Hariri et al. 2026, arXiv:2510.04265; scorio 0.2.3): each problem's
  success rate has the posterior Beta(a + c, b + n - c); pass@k is E[1 - (1 - p)^k] under it, exact
  as 1 - B(a + c, b + n - c + k) / B(a + c, b + n - c). n may differ per problem and k may exceed n.
* ``cover_at_tau``: the share of problems whose success rate c/n is at least tau.

Values are computed in the native core in double-double arithmetic (within a few ulp of the exact
rationals for G-pass and mG-pass); the Beta quantiles of the per-problem intervals within 1e-11 relative
of scipy up to n ~ 1000 and 1e-8 at n ~ 10^5 (lgamma-limited).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from statistics import NormalDist
from typing import Union

import numpy as np
import numpy.typing as npt

from passkcore._native import core
from passkcore.numbers.inputs import (
    Counts,
    Policy,
    apply_k_policy,
    as_int_array,
    counts_arrays,
    counts_pair,
    ks_array,
    warn_dropped,
)

FloatArray = npt.NDArray[np.float64]
Taus = Union[float, npt.ArrayLike]


def _taus(tau: Taus) -> tuple[FloatArray, bool]:
    arr = np.asarray(tau)
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise TypeError(f"tau must be a number or an array of numbers, got {arr.dtype}")
    scalar = arr.ndim == 0
    arr = np.atleast_1d(arr).astype(np.float64)
    if arr.ndim != 1:
        raise ValueError(f"tau must be a number or a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("tau is empty: give at least one threshold")
    bad = ~np.isfinite(arr) | (arr < 0) | (arr > 1)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"tau[{i}] must be in [0, 1] (tau={arr[i]!r})")
    return arr, scalar


def _counts_for_k(n: Counts, c: Counts, k: Counts, policy: Policy) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], bool]:
    n_arr, c_arr = counts_pair(n, c)
    ks = ks_array(k)
    n_kept, c_kept, dropped = apply_k_policy(n_arr, c_arr, int(ks.max()), policy)
    warn_dropped(dropped, n_arr, int(ks.max()))
    return n_kept, c_kept, ks, np.ndim(np.asarray(k)) == 0


def g_threshold(k: int, tau: float) -> int:
    """The least number of correct draws G-pass@k_tau asks for: ``max(ceil(tau * k), 1)`` in float64."""
    return max(int(np.ceil(np.float64(k) * tau)), 1)


def g_pass_at_k(n: Counts, c: Counts, k: Counts, tau: Taus, *, policy: Policy = "error") -> FloatArray:
    """G-pass@k_tau per problem: P(at least ``max(ceil(tau k), 1)`` of k draws are correct).

    Shapes: ``(P,)`` for an int k and a scalar tau; ``(P, K)`` for an array k; an array tau adds a last
    axis ``(T,)``. ``tau = 0`` is pass@k, ``tau = 1`` is pass^k. k above a problem's n is a ValueError
    (or ``policy="drop"``), as for :func:`passkcore.pass_at_k`.
    """
    n_arr, c_arr, ks, scalar_k = _counts_for_k(n, c, k, policy)
    taus, scalar_tau = _taus(tau)
    col_k = np.repeat(ks, taus.size)
    # g_threshold for every (k, tau) at once (the same float64 product and ceil; a Python loop over
    # 20 pairs was ~8% of a 2,000-problem call).
    col_m = np.maximum(np.ceil(ks.astype(np.float64)[:, None] * taus[None, :]), 1).astype(np.int64).ravel()
    out = core.gpass_matrix(n_arr, c_arr, col_k, col_m).reshape(n_arr.size, ks.size, taus.size)
    if scalar_tau:
        out = out[:, :, 0]
    return out[:, 0] if scalar_k else out


def mg_pass_at_k(n: Counts, c: Counts, k: Counts, *, policy: Policy = "error") -> FloatArray:
    """mG-pass@k per problem: ``(2/k) sum_{i=ceil(k/2)+1}^{k} P(X >= i)``; ``(P,)`` or ``(P, K)``."""
    n_arr, c_arr, ks, scalar_k = _counts_for_k(n, c, k, policy)
    out = core.mgpass_matrix(n_arr, c_arr, ks)
    return out[:, 0] if scalar_k else out


def exact_g_pass_at_k(n: int, c: int, k: int, m: int) -> Fraction:
    """P(at least m of k draws correct) as an exact ``Fraction``: the oracle for G-pass and mG-pass."""
    if not (0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    top = sum(math.comb(c, j) * math.comb(n - c, k - j) for j in range(max(m, 0), min(c, k) + 1))
    return Fraction(top, math.comb(n, k))


def exact_mg_pass_at_k(n: int, c: int, k: int) -> Fraction:
    """mG-pass@k as an exact ``Fraction``."""
    return Fraction(2, k) * sum((exact_g_pass_at_k(n, c, k, i) for i in range((k + 1) // 2 + 1, k + 1)), Fraction(0))


@dataclass(frozen=True)
class BayesPassAtK:
    """Bayes@N pass@k: per-problem posterior ``mean``, ``low``, ``high`` (shape ``(P,)`` or ``(P, K)``)
    and the same over problems (``overall_*``, a float or ``(K,)``). Unpacks as ``mean, low, high``.

    Per problem, [low, high] is the exact equal-tailed ``ci`` posterior interval of 1 - (1-p)^k (the
    Beta quantiles of p, mapped through the increasing 1 - (1-p)^k). Over problems the mean of the
    per-problem posterior means; its spread ``overall_std = sqrt(sum of posterior variances) / P`` (the
    problems' rates are independent a posteriori), and the interval ``overall_mean +- z * overall_std``
    clipped to [0, 1], z the normal quantile: scorio 0.2.3's ``pass_at_k_ci`` exactly, where it applies.

    ``low`` and ``high`` are computed on first access (then kept): the Beta quantiles cost ~3x the
    moments, and a caller after the over-problems figures alone never pays for them.
    """

    mean: FloatArray
    overall_mean: Union[float, FloatArray]
    overall_low: Union[float, FloatArray]
    overall_high: Union[float, FloatArray]
    overall_std: Union[float, FloatArray]
    n: npt.NDArray[np.int64] = field(repr=False)
    c: npt.NDArray[np.int64] = field(repr=False)
    k: npt.NDArray[np.int64] = field(repr=False)
    prior: tuple[float, float] = (1.0, 1.0)
    ci: float = 0.95

    @cached_property
    def interval(self) -> tuple[FloatArray, FloatArray]:
        """The per-problem ``(low, high)`` credible bounds, each shaped like ``mean``."""
        low, high = core.bayes_interval(self.n, self.c, self.k, self.prior[0], self.prior[1], self.ci)
        if self.mean.ndim == 1:
            return low[:, 0], high[:, 0]
        return low, high

    @property
    def low(self) -> FloatArray:
        return self.interval[0]

    @property
    def high(self) -> FloatArray:
        return self.interval[1]

    def __iter__(self) -> Iterator[FloatArray]:
        return iter((self.mean, self.low, self.high))

    def __len__(self) -> int:
        return 3

    def __getitem__(self, i: int) -> FloatArray:
        return (self.mean, self.low, self.high)[i]


def _prior(prior: tuple[float, float]) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in prior)
    except (TypeError, ValueError):
        raise TypeError(f"prior must be a pair of numbers (alpha, beta), got {prior!r}") from None
    if not (math.isfinite(a) and math.isfinite(b) and a > 0 and b > 0):
        raise ValueError(f"prior must be two finite positive numbers (alpha, beta), got {prior!r}")
    if a > 1e15 or b > 1e15:  # the native core's bound (kMaxPrior): larger ones overflowed to NaN
        raise ValueError(f"prior must be at most 1e15 each (alpha, beta), got {prior!r}")
    return a, b


def _ci(ci: float) -> float:
    if isinstance(ci, bool) or not isinstance(ci, (int, float, np.floating)):
        raise TypeError(f"ci must be a number in (0, 1), got {ci!r}")
    if not 0.0 < float(ci) < 1.0:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    return float(ci)


def bayes_pass_at_k(n: Counts, c: Counts, k: Counts, prior: tuple[float, float] = (1.0, 1.0), ci: float = 0.95) -> BayesPassAtK:
    """Bayes@N posterior pass@k per problem and over problems (see :class:`BayesPassAtK`).

    ``n`` may differ per problem and k may exceed n (the posterior predicts any number of draws).
    """
    # counts_arrays, not counts_pair, and k's range unchecked here: bayes_summary checks every (n, c)
    # and k >= 1 itself, with the same messages (the repeated passes were ~8% of a 2,000-problem call).
    n_arr, c_arr = counts_arrays(n, c)
    k_in = np.asarray(k)
    ks = as_int_array("k", k_in)
    if ks.size == 0:
        raise ValueError("k is empty: ask for at least one k")
    a, b = _prior(prior)
    level = _ci(ci)
    z = NormalDist().inv_cdf(0.5 + 0.5 * level)
    mean, overall, o_low, o_high, std = core.bayes_summary(n_arr, c_arr, ks, a, b, z)
    rest = (n_arr, c_arr, ks, (a, b), level)
    if k_in.ndim == 0:
        return BayesPassAtK(mean[:, 0], float(overall[0]), float(o_low[0]), float(o_high[0]), float(std[0]), *rest)
    return BayesPassAtK(mean, overall, o_low, o_high, std, *rest)


def cover_at_tau(n: Counts, c: Counts, tau: Taus) -> Union[float, FloatArray]:
    """cover@tau: the share of problems with success rate ``c / n >= tau`` (a float, or ``(T,)``).

    On a uniform n it ties to pass@k: cover@(1/n) is mean pass@n (problems solved at least once),
    cover@1 is mean pass^n, and the mean over problems of c/n (pass@1) is the area under tau -> cover@tau.
    """
    n_arr, c_arr = counts_pair(n, c)
    taus, scalar = _taus(tau)
    share = core.cover_counts(n_arr, c_arr, taus) / n_arr.size
    return float(share[0]) if scalar else share
