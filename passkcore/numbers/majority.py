"""Unbiased maj@k from answer classes, and the answer classes of a run's verdicts.

A problem's n samples fall into answer classes (equal ``answer_key`` after verification: math answers
grouped by math-verify equivalence, code by identical output); the correct samples form the correct
class, samples without an answer abstain. maj@k is the chance, over k of the n samples drawn uniformly
without replacement, that the correct class is the most frequent among the drawn answers, a tie at the
top between T + 1 classes counting 1 / (T + 1) (all draws abstaining count 0). The native core computes
it exactly by a DP over classes for every k at once (see csrc/majority.hpp); ``exact_maj_at_k`` is the
``Fraction`` oracle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Union

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from passkcore._native import core
from passkcore.numbers.inputs import Counts, apply_k_policy, as_int_array, ks_array

ClassSizes = Union[Sequence[npt.ArrayLike], npt.NDArray[np.integer]]


def _flatten(class_sizes: ClassSizes) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Concatenated sizes and per-problem offsets; a 2-D array is one problem per row."""
    if isinstance(class_sizes, np.ndarray) and class_sizes.ndim == 2:
        rows, width = class_sizes.shape
        flat = as_int_array("class_sizes", class_sizes.reshape(-1))
        offsets = np.arange(0, rows * width + 1, max(width, 1), dtype=np.int64)[: rows + 1]
        if width == 0:
            offsets = np.zeros(rows + 1, dtype=np.int64)
    else:
        if isinstance(class_sizes, (str, bytes)) or not isinstance(class_sizes, (Sequence, np.ndarray)):
            raise TypeError(f"class_sizes must be a sequence of 1-D integer arrays, got {type(class_sizes).__name__}")
        parts = [as_int_array(f"class_sizes[{p}]", s, allow_scalar=False) for p, s in enumerate(class_sizes)]
        lengths = np.fromiter((a.size for a in parts), dtype=np.int64, count=len(parts))
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if flat.size and flat.min() < 0:
        i = int(np.argmin(flat))
        p = int(np.searchsorted(offsets, i, side="right") - 1)
        raise ValueError(f"class_sizes[{p}][{i - int(offsets[p])}] must be non-negative ({int(flat[i])})")
    return flat, offsets


def maj_at_k(class_sizes: ClassSizes, correct: Counts, k: Counts, abstain: Optional[Counts] = None) -> npt.NDArray[np.float64]:
    """Exact unbiased maj@k per problem: ``(P,)`` for an int k, ``(P, K)`` for an array of ks.

    ``class_sizes``: one 1-D integer array of class sizes per problem (or a 2-D array, a row per
    problem); ``correct``: the index of the correct class per problem (-1: no class is correct);
    ``abstain``: samples without an answer per problem (default 0), counted in n but in no class.
    A k above a problem's n = sum(class sizes) + abstain is a ValueError naming the problems.
    """
    flat, offsets = _flatten(class_sizes)
    P = offsets.size - 1
    if P == 0:
        raise ValueError("class_sizes is empty: no problems were given")
    corr = as_int_array("correct", correct)
    if corr.size != P:
        raise ValueError(f"class_sizes and correct differ in length ({P} vs {corr.size})")
    ab = np.zeros(P, dtype=np.int64) if abstain is None else as_int_array("abstain", abstain)
    if ab.size == 1 and P != 1:
        ab = np.full(P, ab[0], dtype=np.int64)
    if ab.size != P:
        raise ValueError(f"class_sizes and abstain differ in length ({P} vs {ab.size})")
    if ab.min() < 0:
        i = int(np.argmin(ab))
        raise ValueError(f"abstain[{i}] must be non-negative ({int(ab[i])})")
    # Per-problem sums with a cumulative sum: reduceat breaks on problems with no class (all abstain),
    # at the end of the list or between others.
    cum = np.concatenate(([0], np.cumsum(flat, dtype=np.int64)))
    n = cum[offsets[1:]] - cum[offsets[:-1]] + ab
    if n.min() < 1:
        i = int(np.argmin(n))
        raise ValueError(f"problem {i} has no samples (class sizes and abstain sum to {int(n[i])})")
    ks = ks_array(k)
    apply_k_policy(n, np.zeros_like(n), int(ks.max()), "error")
    uniq, column = np.unique(ks, return_inverse=True)
    out = core.maj_matrix(flat, offsets, corr, ab, uniq)[:, column.reshape(-1)]
    return out[:, 0] if np.ndim(np.asarray(k)) == 0 else out


def exact_maj_at_k(sizes: Sequence[int], correct: int, k: int, abstain: int = 0) -> Fraction:
    """maj@k of one problem as an exact ``Fraction``, by the same class decomposition in integers:
    for every count t of the correct class, the draws where every other class has at most t (the
    number of classes at exactly t decides the tie share) times the free draws from the rest."""
    sizes = [int(s) for s in sizes]
    n = sum(sizes) + abstain
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n (n={n}, k={k})")
    if correct < 0 or sizes[correct] == 0:
        return Fraction(0)
    others = [s for j, s in enumerate(sizes) if j != correct]
    total = Fraction(0)
    for t in range(1, min(sizes[correct], k) + 1):
        # poly[T][d]: ways to draw d from the other classes, each <= t, T of them at exactly t.
        poly: dict[tuple[int, int], int] = {(0, 0): 1}
        for s in others:
            nxt: dict[tuple[int, int], int] = {}
            for (T, d), ways in poly.items():
                for x in range(0, min(s, t) + 1):
                    key = (T + (x == t), d + x)
                    nxt[key] = nxt.get(key, 0) + ways * math.comb(s, x)
            poly = nxt
        for (T, d), ways in poly.items():
            if d <= k - t:
                total += Fraction(math.comb(sizes[correct], t) * ways * math.comb(abstain, k - t - d), T + 1)
    return total / math.comb(n, k)


@dataclass(frozen=True)
class AnswerClasses:
    """One model's answer classes per problem, in ``problem_id`` order (ready for :func:`maj_at_k`)."""

    model: str
    problem_ids: npt.NDArray[np.object_]
    class_sizes: list[npt.NDArray[np.int64]]
    correct: npt.NDArray[np.int64]  # index of the correct class, -1 if no sample is correct
    abstain: npt.NDArray[np.int64]
    n: npt.NDArray[np.int64]
    c: npt.NDArray[np.int64]


_CORRECT_KEY = "\x00correct"  # cannot collide with a stored answer_key (those are printable)
_NEEDED = ("model", "problem_id", "correct", "answer_key")


def answer_classes(table: pa.Table) -> dict[str, AnswerClasses]:
    """Groups per-sample verdict rows into answer classes, per model (models in sorted order).

    ``table`` needs ``model, problem_id, correct, answer_key`` (as ``SampleStore.samples`` returns them).
    Correct samples form one class (the correct one); the other samples are grouped by equal
    ``answer_key``; incorrect samples with a null ``answer_key`` abstain. All grouping runs in Arrow.
    """
    missing = [name for name in _NEEDED if name not in table.column_names]
    if missing:
        raise ValueError(f"answer classes need column(s) {', '.join(missing)}; the table has {', '.join(table.column_names)}")
    if table.num_rows == 0:
        raise ValueError("answer classes: no samples")
    unverified = pc.sum(pc.is_null(table.column("correct"))).as_py() or 0
    if unverified:
        raise ValueError(f"answer classes: {unverified} of {table.num_rows} samples are not verified yet; run `passk verify` first")
    correct = table.column("correct")
    key = pc.if_else(correct, pa.scalar(_CORRECT_KEY), table.column("answer_key").cast(pa.string()))
    slim = pa.table({"model": table.column("model").cast(pa.string()), "problem_id": table.column("problem_id").cast(pa.string()),
                     "key": key, "correct": pc.cast(correct, pa.int64())})
    groups = slim.group_by(["model", "problem_id", "key"], use_threads=False).aggregate([("correct", "count"), ("correct", "max")])
    groups = groups.sort_by([("model", "ascending"), ("problem_id", "ascending"), ("key", "ascending")])
    model = groups.column("model").to_numpy(zero_copy_only=False)
    pid = groups.column("problem_id").to_numpy(zero_copy_only=False)
    size = groups.column("correct_count").to_numpy().astype(np.int64)
    is_correct = groups.column("correct_max").to_numpy().astype(bool)
    is_abstain = groups.column("key").is_null().to_numpy(zero_copy_only=False)
    # Problem boundaries over the sorted (model, problem_id) groups.
    new_problem = np.ones(len(pid), dtype=bool)
    new_problem[1:] = (model[1:] != model[:-1]) | (pid[1:] != pid[:-1])
    starts = np.flatnonzero(new_problem)
    prob = np.cumsum(new_problem) - 1
    P = starts.size
    abstain = np.bincount(prob, weights=np.where(is_abstain, size, 0), minlength=P).astype(np.int64)
    n = np.bincount(prob, weights=size, minlength=P).astype(np.int64)
    c = np.bincount(prob, weights=np.where(is_correct, size, 0), minlength=P).astype(np.int64)
    keep = ~is_abstain
    k_prob, k_size, k_correct = prob[keep], size[keep], is_correct[keep]
    offsets = np.searchsorted(k_prob, np.arange(P + 1))
    local = np.arange(k_prob.size) - offsets[k_prob]
    corr_idx = np.full(P, -1, dtype=np.int64)
    corr_idx[k_prob[k_correct]] = local[k_correct]
    sizes = np.split(k_size, offsets[1:-1])
    out: dict[str, AnswerClasses] = {}
    problem_model = model[starts]
    for name in dict.fromkeys(problem_model.tolist()):
        rows = np.flatnonzero(problem_model == name)
        out[str(name)] = AnswerClasses(str(name), pid[starts][rows], [sizes[i] for i in rows], corr_idx[rows],
                                       abstain[rows], n[rows], c[rows])
    return out
