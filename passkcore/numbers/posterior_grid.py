"""Benchmark-target intervals: posterior draws of pass@k with the problems fixed and their samples random.

The question is how far the study's own pass@k (the mean over *these* problems of 1 - (1-p_i)^k, p_i
problem i's true solve rate) can be from what its n samples per problem show. Each p_i gets a posterior
under a prior learned from all problems: p takes values on a fixed grid of rates (``grid_rates``: dense
near 0 and 1, where pass@k at large k is decided) with weights w that get a Dirichlet prior, and the
core's Gibbs sampler (``core.grid_posterior``) draws the weights and every problem's grid rate in turn,
starting from the weights' maximum-likelihood estimate (the NPMLE by EM). A draw is a histogram of the
problems over the grid, so the mean pass@k of a draw, at every k, is one matrix product. Up to k = n/2,
where the samples alone give an unbiased variance, ``curves`` centres the draws on the unbiased
estimate and widens them to its standard error; beyond, that correction fades to none at k = n.

Why a grid and a Dirichlet: a single beta or zero-inflated beta prior is misspecified on real
benchmarks (solve rates pile up at 0, 1 and in between) and fitted once it ignores its own
uncertainty; at k = n that leaves intervals too narrow. The grid fits any shape, and the weights' own
posterior spreads mass between "exactly 0" and "small but positive" as far as the counts allow, which
is what c = 0 problems contribute at k = n. Coverage measured by simulation is in docs/metrics.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from passkcore._native import core
from passkcore.numbers.inputs import counts_pair, ks_array

F64 = npt.NDArray[np.float64]
# 129 rates: sin^2 spacing puts 9 of them in [0, 0.012] (a never-solved problem's plausible range at
# n = 256); a pair's draws touch only the columns where its likelihood is not negligible (46 to 63
# at n = 128, MATH500).
GRID_SIZE = 129
# Dirichlet prior on the grid weights: 10 pseudo-problems spread evenly over the grid (the arcsine,
# Jeffreys, density). Measured on the calibration simulation (150 studies a cell): worth 1, the weights
# pin never-solved problems to p = 0 and k = n coverage fell to 82% (uniform, n = 64); worth 40, the
# unsolvable problems' mass is smeared above 0 and coverage fell to 83% (mixture, n = 16, k = 8).
CONCENTRATION = 10.0
# EM steps to the NPMLE start, then Gibbs steps of burn-in before the first kept draw. The chain leaves
# the spiky NPMLE slowly: 30 steps of burn-in left the k = n intervals narrower (u-shaped, n = 256:
# width 0.0346 against 0.0364 after 200, coverage 87.7% against 92.0%, 300 studies); 100 cost ~1.5 ms
# of the sampler's ~7.3 at MATH500's size (quiet 2-core VM, 2026-12-06).
EM_ITERS = 50
BURN = 100
# Allocation draws per weight draw: the pairs' cumulative tables and the Dirichlet step (~12 us at
# MATH500's size, against ~2.2 us for the 500 rates of one allocation draw) are shared by 8 draws, each
# with the weights a draw from the joint posterior (8 per weight draw cost 7.3 ms a run, 16: 5.8 ms).
PER_WEIGHT = 8
# Bounds on the ratio of the unbiased standard error to the draws' spread (``curves``): it only widens.
# Near k = n/2 the unbiased variance is a sum dominated by a few problems, skewed and often too small:
# letting it narrow the draws took uniform rates at n = 256, k = 128 from 94.7% to 83-89% (95%).
SCALE_BOUNDS = (1.0, 2.0)


def grid_rates(size: int = GRID_SIZE) -> F64:
    """``size`` solve rates from 0 to 1 (both included), sin^2-spaced: dense near 0 and 1."""
    return np.sin(np.linspace(0.0, np.pi / 2, size)) ** 2


def likelihood(pn: npt.NDArray[np.int64], pc: npt.NDArray[np.int64], rates: F64) -> F64:
    """Binomial likelihood of each distinct (n, c) at each rate, (D, G), every row scaled to max 1."""
    # 0 * log 0 is 0 here (c = 0 is certain at rate 0, c = n at rate 1): the end rates' logs are
    # clipped to log(1e-300), which only a positive count turns into a (scaled) zero likelihood.
    log_p, log_q = np.log(np.maximum(rates, 1e-300)), np.log(np.maximum(1.0 - rates, 1e-300))
    c, f = pc[:, None].astype(np.float64), (pn - pc)[:, None].astype(np.float64)
    ll = c * log_p[None] + f * log_q[None]
    ll -= ll.max(axis=1, keepdims=True)
    return np.exp(ll)


def pass_table(rates: F64, ks: npt.NDArray[np.int64]) -> F64:
    """1 - (1 - rate)^k, (G, K), without cancellation for small rates."""
    with np.errstate(divide="ignore"):
        return -np.expm1(ks[None, :] * np.log1p(-rates)[:, None])


class GridPosterior:
    """Posterior draws of one model's problems on the rate grid; ``curves(ks)`` is the mean pass@k of
    every draw, (draws, K): the benchmark target's analogue of a bootstrap resample's curve."""

    def __init__(self, n: Any, c: Any, *, draws: int = 2000, seed: int = 0, grid_size: int = GRID_SIZE) -> None:
        n_arr, c_arr = counts_pair(n, c)
        if n_arr.size == 0:
            raise ValueError("no problems given")
        pn, pc, count, _ = core.distinct_pairs(n_arr, c_arr)
        self.rates = grid_rates(grid_size)
        self.problems = int(n_arr.size)
        self.pairs = (pn, pc, np.asarray(count, dtype=np.float64))
        self.n_min = int(n_arr.min())
        self.half = self.n_min // 2
        lik = likelihood(pn, pc, self.rates)
        alpha = np.full(grid_size, CONCENTRATION / grid_size)
        self.counts, self.start_weights = core.grid_posterior(
            lik, count, alpha, int(draws), BURN, EM_ITERS, PER_WEIGHT, int(seed) % 2**64)

    def raw_curves(self, ks: Any) -> F64:
        """The posterior draws' mean pass@k over the problems, (draws, K), before ``curves``' correction."""
        return core.grid_curves(self.counts, pass_table(self.rates, ks_array(ks)) / self.problems)

    def curves(self, ks: Any) -> F64:
        """Mean pass@k over the problems in every draw, (draws, K), centred and scaled where an unbiased
        variance exists.

        For k <= n/2 (n the smallest per problem) the draws are moved to the unbiased estimate, and
        widened (never narrowed, at most 2x) to its unbiased standard error (sum over problems of
        Var_i_hat = hat^2 - the unbiased estimate of (pass@k)^2, which needs n >= 2k): the posterior's
        own centre is shrunk by a prior that small n barely identifies (mostly-hard rates, n = 8: the
        raw draws covered 88.7% at k = 1 for 95%, corrected 96.7%; 300 studies). Beyond n/2 no such
        variance exists: the shift and widening of k = n/2 fade linearly in log k to none at k = n,
        so the draws are continuous at n/2 and the posterior's own at k = n (carrying the n/2 shift
        all the way took uniform rates at n = 256 from 92.5% to 83% at k = n). Each draw keeps its
        shape across k, so crossings stay meaningful.
        """
        k_arr = ks_array(ks)
        if k_arr.size and int(k_arr.max()) > self.n_min:  # the correction below would extrapolate
            raise ValueError(f"k = {int(k_arr.max())} exceeds the smallest n = {self.n_min}")
        if self.half < 1:
            return self.raw_curves(k_arr)
        k_all = np.union1d(k_arr, [self.half])
        raw = self.raw_curves(k_all)
        pn, pc, count = self.pairs
        low = k_all[k_all <= self.half]
        # The core's own calls (the pairs are valid and 2k <= n by construction): the same numbers as
        # pass_at_k and pass_at_k_variance without their input checks (~0.2 ms at MATH500's size).
        est = count @ core.pass_matrix(pn, pc, low, "pass_at_k") / self.problems
        se = np.sqrt(np.maximum(count @ core.pass_variance(pn, pc, low)[0], 0.0)) / self.problems
        # The draws' mean, and their spread only where corrected (raw.mean(axis=0) and
        # raw[:, :low.size].std(axis=0), the same numbers, in one native pass each).
        centre, spread = core.grid_moments(raw, low.size)
        shift, scale = np.empty(k_all.size), np.ones(k_all.size)
        shift[: low.size] = est - centre[: low.size]
        ok = (spread > 0) & (se > 0)
        scale[: low.size][ok] = np.clip(se[ok] / spread[ok], *SCALE_BOUNDS)
        # Beyond n/2: the n/2 correction times t, from 1 at n/2 to 0 at k = n (the smallest n).
        high = k_all[low.size:]
        t = 1.0 - np.log(high / self.half) / np.log(self.n_min / self.half)
        shift[low.size:] = shift[low.size - 1] * t
        scale[low.size:] = 1.0 + (scale[low.size - 1] - 1.0) * t
        # In place, one pass: raw = clip(raw * scale + offset, 0, 1), numpy's numbers.
        core.grid_affine_clip(raw, scale, centre * (1.0 - scale) + shift)
        return raw if k_all.size == k_arr.size and np.array_equal(k_all, k_arr) else raw[:, np.searchsorted(k_all, k_arr)]
