"""Exact expectations over k-subsets drawn without replacement, shared by the stack integrations.

Two quantities, both as (mean, standard deviation) over the C(n, k) equally likely subsets of a prompt's
n samples, for every k at once:

- best@k / worst@k: the maximum (minimum) of a real-valued variable over the subset. With the values
  sorted, v_(1) <= ... <= v_(n), max = v_(1) + sum_j (v_(j) - v_(j-1)) * [max >= v_(j)], and
  P(max >= v_(j)) is pass@k with c = n - j + 1 "successes" (the samples at or above v_(j)); so the mean is
  a dot product of the value gaps with the unbiased pass@k weights of the C++ core, and the second
  moment the same with squared gaps. Ties need no care: a zero gap adds nothing.
- maj@k: the value of the winning answer class (a class's value is the mean of its samples' values),
  a tie at the top between T + 1 classes split evenly, samples without an answer abstaining and an
  all-abstaining subset worth 0. The mean is sum_j P(class j wins) * value_j, the second moment the same
  with value_j^2; P(class j wins) is the core's maj@k with j as the "correct" class. Classes of equal
  size win with equal probability (the vote sees only counts), so one core row per distinct class size
  with a nonzero value serves every class of that size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

import passkcore

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Rows x classes of one maj@k core call: bounds the padded class-size matrix to 32 MiB of int64.
_MAJ_CELLS = 1 << 22


def pass_weights(n: int, ks: Sequence[int]) -> FloatArray:
    """``(n + 1, K)``: row c is the core's unbiased pass@k for c correct of n, at each k."""
    c = np.arange(n + 1, dtype=np.int64)
    return np.asarray(passkcore.pass_at_k(np.full(n + 1, n, dtype=np.int64), c, np.asarray(ks, dtype=np.int64)),
                      dtype=np.float64).reshape(n + 1, len(ks))


def _max_moments(ordered: FloatArray, weights: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Mean and std of the subset maximum; ``ordered`` is ``(P, n)`` sorted ascending along rows."""
    n = ordered.shape[1]
    low = ordered[:, :1]
    # Shifted by the row minimum: the second moment then needs no large cancelling terms.
    shifted = ordered - low
    at_least = weights[n - 1:0:-1] if n > 1 else weights[:0]  # P(max >= v_(j)) for j = 2..n: c = n-1 .. 1
    first = np.diff(shifted, axis=1) @ at_least
    second = np.diff(shifted * shifted, axis=1) @ at_least
    var = np.maximum(second - first * first, 0.0)
    return low + first, np.sqrt(var)


def best_worst(values: FloatArray, ks: Sequence[int]) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """For ``values`` of shape ``(P, n)`` (one prompt per row): best mean, best std, worst mean, worst
    std, each ``(P, K)``, the exact moments of the max / min over uniform k-subsets."""
    values = np.asarray(values, dtype=np.float64)
    weights = pass_weights(values.shape[1], ks)
    ordered = np.sort(values, axis=1)
    best_mean, best_std = _max_moments(ordered, weights)
    neg_mean, worst_std = _max_moments(-ordered[:, ::-1], weights)
    return best_mean, best_std, -neg_mean, worst_std


def majority_moments(prompt: IntArray, label: IntArray, values: FloatArray, prompts: int,
                     ks: Sequence[int]) -> tuple[FloatArray, FloatArray]:
    """Mean and std, ``(prompts, K)``, of the winning class's value over uniform k-subsets.

    One entry per sample: ``prompt`` (0 .. prompts-1), ``label`` (its answer class, any int unique within
    the prompt; -1 abstains) and ``values``. Every prompt needs at least max(ks) samples.
    """
    ks_arr = np.asarray(ks, dtype=np.int64)
    first = np.zeros((prompts, ks_arr.size))
    second = np.zeros((prompts, ks_arr.size))
    n = np.bincount(prompt, minlength=prompts).astype(np.int64)
    voting = label >= 0
    abstain = n - np.bincount(prompt[voting], minlength=prompts)
    # Classes: the distinct (prompt, label) pairs, sorted by prompt.
    # 1-D int64 keys: np.unique over axis=1 sorts structured rows, ~20x slower.
    span = int(label.max(initial=0)) + 1
    pairs, inverse = np.unique(prompt[voting] * span + label[voting], return_inverse=True)
    inverse = inverse.reshape(-1)
    cls_prompt = pairs // span
    size = np.bincount(inverse, minlength=cls_prompt.size).astype(np.int64)
    value = np.bincount(inverse, weights=values[voting], minlength=cls_prompt.size) / np.maximum(size, 1)
    if cls_prompt.size == 0:
        return first, second
    start = np.searchsorted(cls_prompt, np.arange(prompts + 1))
    local = np.arange(cls_prompt.size) - start[cls_prompt]
    width = int(np.diff(start).max())
    sizes = np.zeros((prompts, width), dtype=np.int64)
    sizes[cls_prompt, local] = size
    # One core row per (prompt, class size) among classes with a nonzero value; its weights are the
    # summed values (and squared values) of the classes of that size.
    nonzero = value != 0.0
    top = int(size.max()) + 1
    groups, ginv = np.unique(cls_prompt[nonzero] * top + size[nonzero], return_inverse=True)
    ginv = ginv.reshape(-1)
    if groups.size == 0:
        return first, np.zeros_like(second)
    w1 = np.bincount(ginv, weights=value[nonzero], minlength=groups.size)
    w2 = np.bincount(ginv, weights=value[nonzero] ** 2, minlength=groups.size)
    rep = np.zeros(groups.size, dtype=np.int64)
    rep[ginv] = local[nonzero]  # any class of that size: all win equally often
    row_prompt = groups // top
    step = max(1, _MAJ_CELLS // max(width, 1))
    for lo in range(0, row_prompt.size, step):
        sl = slice(lo, lo + step)
        p = row_prompt[sl]
        win = np.asarray(passkcore.maj_at_k(sizes[p], rep[sl], ks_arr, abstain=abstain[p]), dtype=np.float64)
        win = win.reshape(p.size, ks_arr.size)
        np.add.at(first, p, win * w1[sl, None])
        np.add.at(second, p, win * w2[sl, None])
    return first, np.sqrt(np.maximum(second - first * first, 0.0))
