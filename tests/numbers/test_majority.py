"""maj@k: exact DP against brute force over all k-subsets and the Fraction oracle; answer classes."""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from scorio.eval.maj import maj_at_k as scorio_maj_at_k

from passkcore import answer_classes, exact_maj_at_k, maj_at_k
from passkcore.pipeline.store import SampleStore


def brute_maj(sizes: list[int], correct: int, k: int, abstain: int = 0) -> Fraction:
    """Every k-subset of the labelled samples, plurality with ties shared equally."""
    labels = [j for j, s in enumerate(sizes) for _ in range(s)] + [-1] * abstain
    won, subsets = Fraction(0), 0
    for draw in itertools.combinations(labels, k):
        subsets += 1
        counts: dict[int, int] = {}
        for label in draw:
            if label >= 0:
                counts[label] = counts.get(label, 0) + 1
        if correct < 0 or counts.get(correct, 0) == 0:
            continue
        top = max(counts.values())
        if counts[correct] == top:
            won += Fraction(1, sum(v == top for v in counts.values()))
    return won / subsets


CASES = [([3, 2, 1], 0, 1), ([2, 2], 1, 0), ([1, 1, 1, 1], 2, 2), ([4, 3, 0, 2], 1, 1), ([5], 0, 3), ([2, 3], -1, 1),
         ([1, 2, 2, 1, 3], 4, 0), ([3, 3, 3], 0, 0)]


@pytest.mark.parametrize(("sizes", "correct", "abstain"), CASES)
def test_matches_brute_force_and_oracle_at_every_k(sizes: list[int], correct: int, abstain: int) -> None:
    n = sum(sizes) + abstain
    got = maj_at_k([np.array(sizes)], [correct], np.arange(1, n + 1), abstain=[abstain])[0]
    for k in range(1, n + 1):
        exact = brute_maj(sizes, correct, k, abstain)
        assert exact_maj_at_k(sizes, correct, k, abstain) == exact
        assert got[k - 1] == pytest.approx(float(exact), rel=1e-13, abs=1e-15)


def test_random_problems_against_oracle() -> None:
    rng = np.random.default_rng(3)
    sizes = [rng.integers(0, 9, size=rng.integers(1, 7)) for _ in range(25)]
    correct = [int(rng.integers(-1, s.size)) for s in sizes]
    abstain = rng.integers(0, 4, size=25)
    n = np.array([s.sum() for s in sizes]) + abstain
    sizes = [s for s, m in zip(sizes, n) if m >= 4]
    keep = n >= 4
    correct = [c for c, m in zip(correct, keep) if m]
    ks = np.array([1, 2, 3, 4])
    got = maj_at_k(sizes, correct, ks, abstain=abstain[keep])
    for p, (s, c, a) in enumerate(zip(sizes, correct, abstain[keep])):
        for j, k in enumerate(ks):
            assert got[p, j] == pytest.approx(float(exact_maj_at_k(list(s), c, int(k), int(a))), rel=1e-12, abs=1e-15)


def test_ties_share_equally() -> None:
    # two classes of 1, k = 2: the draw is one of each, a two-way tie: 1/2.
    assert maj_at_k([[1, 1]], [0], 2)[0] == pytest.approx(0.5)
    # three singletons, k = 3: a three-way tie.
    assert maj_at_k([[1, 1, 1]], [2], 3)[0] == pytest.approx(1 / 3)
    # all drawn abstain: 0; a lone correct sample among abstainers wins whenever drawn.
    assert maj_at_k([[1]], [0], 1, abstain=[3])[0] == pytest.approx(0.25)


def test_two_classes_at_odd_k_match_scorio() -> None:
    """scorio 0.2.3's maj@k is the strict majority of correct among k binary outcomes; with one wrong
    class and odd k (no ties possible) that is the plurality maj@k computed here."""
    rng = np.random.default_rng(4)
    R = (rng.random((25, 21)) < rng.beta(0.8, 0.8, size=(25, 1))).astype(int)
    c = R.sum(axis=1)
    sizes = [np.array([x, 21 - x]) for x in c]
    for k in [1, 3, 7, 21]:
        ours = maj_at_k(sizes, np.zeros(c.size, dtype=np.int64), k)
        assert float(ours.mean()) == pytest.approx(scorio_maj_at_k(R, k), abs=1e-12)


def test_k1_is_the_correct_share_and_shapes() -> None:
    sizes = [np.array([5, 3, 2]), np.array([1, 9])]
    out = maj_at_k(sizes, [0, 0], 1, abstain=[2, 0])
    assert out.shape == (2,)
    np.testing.assert_allclose(out, [5 / 12, 1 / 10], rtol=1e-15)
    assert maj_at_k(sizes, [0, 0], [3, 1, 3]).shape == (2, 3)
    two_d = maj_at_k(np.array([[5, 3, 2], [1, 9, 0]]), [0, 1], [1, 5])
    np.testing.assert_allclose(two_d, maj_at_k([[5, 3, 2], [1, 9, 0]], [0, 1], [1, 5]), rtol=0)


def test_large_n_uses_extended_range() -> None:
    # n = 1200 > 1000: C(n, k) leaves the double range; the long double path must agree with the oracle.
    sizes = [700, 300, 200]
    got = maj_at_k([sizes], [1], [1, 3, 600, 1200])[0]
    assert got[0] == pytest.approx(300 / 1200, rel=1e-13)
    assert got[1] == pytest.approx(float(exact_maj_at_k(sizes, 1, 3)), rel=1e-12)
    assert got[3] == 0.0 and got[2] < 1e-30


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"class_sizes": [[1, -2]], "correct": [0], "k": 1}, ValueError, r"class_sizes\[0\]\[1\]"),
    ({"class_sizes": [[1, 2]], "correct": [2], "k": 1}, ValueError, r"correct\[0\] = 2"),
    ({"class_sizes": [[1, 2]], "correct": [0], "k": 4}, ValueError, "k=4 exceeds"),
    ({"class_sizes": [[1, 2]], "correct": [0], "k": 0}, ValueError, r"k\[0\] must be at least 1"),
    ({"class_sizes": [[1, 2], [1]], "correct": [0], "k": 1}, ValueError, "differ in length"),
    ({"class_sizes": [[1.5, 2]], "correct": [0], "k": 1}, ValueError, "not an integer"),
    ({"class_sizes": [["a"]], "correct": [0], "k": 1}, TypeError, "class_sizes"),
    ({"class_sizes": [[1, 2]], "correct": [0], "k": 1, "abstain": [-1]}, ValueError, r"abstain\[0\]"),
    ({"class_sizes": [[0, 0]], "correct": [0], "k": 1}, ValueError, "no samples"),
])
def test_bad_input(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        maj_at_k(**kwargs)


def _table() -> pa.Table:
    return pa.table({
        "model": ["a"] * 7 + ["b"] * 2,
        "problem_id": ["p1"] * 5 + ["p2"] * 2 + ["p1"] * 2,
        "sample_index": [0, 1, 2, 3, 4, 0, 1, 0, 1],
        "correct": [True, False, False, True, False, False, False, True, True],
        "answer_key": ["5", "3", "3", "5", None, None, "7", "5", "5"],
    })


def test_answer_classes_groups_by_key() -> None:
    classes = answer_classes(_table())
    a = classes["a"]
    assert list(a.problem_ids) == ["p1", "p2"]
    assert [s.tolist() for s in a.class_sizes] == [[2, 2], [1]]
    assert a.correct.tolist() == [0, -1] and a.abstain.tolist() == [1, 1]
    assert a.n.tolist() == [5, 2] and a.c.tolist() == [2, 0]
    # p1: classes {correct: 2, "3": 2} and one abstainer; maj@1 = 2/5.
    assert maj_at_k(a.class_sizes, a.correct, 1, a.abstain)[0] == pytest.approx(0.4)
    assert classes["b"].class_sizes[0].tolist() == [2]


def test_answer_classes_errors() -> None:
    with pytest.raises(ValueError, match="answer_key"):
        answer_classes(_table().drop_columns(["answer_key"]))
    unverified = _table().set_column(3, "correct", pa.array([None] + [True] * 8, pa.bool_()))
    with pytest.raises(ValueError, match="not verified"):
        answer_classes(unverified)


def test_answer_classes_from_a_store(tmp_path: Path) -> None:
    store = SampleStore.create(tmp_path, {"spec": "t"})
    rows, verdicts = [], []
    for row in _table().to_pylist():
        rows.append({**{k: row[k] for k in ("model", "problem_id", "sample_index")}, "seed": 1, "prompt_token_ids": [1],
                     "response_token_ids": [2], "response": "x", "finish_reason": "stop", "cumulative_logprob": -1.0})
        verdicts.append({**row, "extracted_answer": row["answer_key"], "verifier": "t", "reason": "r"})
    store.write_samples(rows)
    store.write_verdicts(verdicts)
    table = store.samples(columns=["model", "problem_id", "sample_index", "correct", "answer_key"])
    assert [s.tolist() for s in answer_classes(table)["a"].class_sizes] == [[2, 2], [1]]


def test_problems_with_no_class_at_the_end_or_between() -> None:
    # Every sample abstained on problems 1 and 3: maj@k is 0 there; the others are unaffected.
    sizes = [np.array([2, 1]), np.array([], dtype=np.int64), np.array([3]), np.array([], dtype=np.int64)]
    out = maj_at_k(sizes, [0, -1, 0, -1], 1, abstain=[0, 2, 0, 3])
    assert out.tolist() == [2 / 3, 0.0, 1.0, 0.0]
