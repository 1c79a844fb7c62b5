"""Coverage bitsets: the MATH500 table, set algebra against plain numpy, matching by id, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from passkcore import _core
from passkcore.numbers.coverage import Coverage, from_bitset, to_bitset


def test_math500_coverage_table(math500_path: Path) -> None:
    cov = Coverage.from_counts(math500_path)
    t = cov.table("base", "simplerl", k=128)
    assert (t.both, t.only_a, t.only_b, t.neither) == (462, 19, 3, 16)
    assert t.problems == 500
    assert sorted(cov.only("simplerl", "base").tolist()) == sorted(t.only_b_ids.tolist())
    assert len(t.only_b_ids) == 3 and len(t.neither_ids) == 16
    assert cov.matrix().tolist() == [[0, 19], [3, 0]]
    assert cov.num_solved("base") == 481 and cov.solved("simplerl").size == 465
    assert not cov.is_subset("simplerl", "base")
    assert cov.jaccard("base", "simplerl") == pytest.approx(462 / 484)


def test_against_numpy_booleans() -> None:
    rng = np.random.default_rng(5)
    P, M = 1037, 5  # not a multiple of 64: the padding bits must not count
    n = rng.integers(1, 40, (M, P))
    c = np.minimum(n, rng.binomial(n, 0.05))
    ids = [f"p{i}" for i in range(P)]
    cov = Coverage.from_arrays(ids, {f"m{j}": (n[j], c[j]) for j in range(M)})
    solved = c > 0
    expected = np.array([[int((solved[i] & ~solved[j]).sum()) for j in range(M)] for i in range(M)])
    np.testing.assert_array_equal(cov.matrix(), expected)
    t = cov.table("m1", "m3")
    assert t.both == int((solved[1] & solved[3]).sum()) and t.neither == int((~solved[1] & ~solved[3]).sum())
    np.testing.assert_array_equal(cov.solved("m2"), np.array(ids, dtype=object)[solved[2]])


def test_threshold_uses_pass_at_k() -> None:
    import passkcore as pk

    n = np.full(6, 10)
    c = np.array([0, 1, 3, 5, 9, 10])
    cov = Coverage.from_arrays(list("abcdef"), {"x": (n, c), "y": (n, 10 - c)})
    values = pk.pass_at_k(n, c, 2)
    assert cov.solved("x", k=2, threshold=0.5).tolist() == [p for p, v in zip("abcdef", values) if v >= 0.5]
    assert cov.num_solved("x", k=2, threshold=1.0) == 2  # c >= 9: pass@2 = 1 exactly
    assert cov.num_solved("x", k=2, threshold=0.0) == 6


def test_matching_is_by_problem_id_not_position() -> None:
    table = pa.table({
        "problem_id": ["1", "2", "3", "3", "1", "2"],
        "model": ["a", "a", "a", "b", "b", "b"],
        "n": [4] * 6,
        "c": [0, 1, 2, 0, 3, 0],
    })
    cov = Coverage.from_counts(table)
    t = cov.table("a", "b")
    assert t.only_a_ids.tolist() == ["2", "3"] and t.only_b_ids.tolist() == ["1"]


def test_missing_problem_is_named_unless_intersecting() -> None:
    table = pa.table({"problem_id": ["1", "2", "1"], "model": ["a", "a", "b"], "n": [4, 4, 4], "c": [1, 1, 0]})
    with pytest.raises(ValueError, match="problem_id '2' is missing for model 'b'"):
        Coverage.from_counts(table)
    cov = Coverage.from_counts(table, intersect=True)
    assert cov.problem_ids.tolist() == ["1"]


def test_outcomes_are_bitsets_with_popcount() -> None:
    rng = np.random.default_rng(1)
    outcomes = {"m": [rng.random(int(s)) < 0.3 for s in rng.integers(1, 200, 50)]}
    outcomes["m"][3] = np.zeros(70, dtype=bool)
    cov = Coverage.from_outcomes(range(50), outcomes)
    n, c = cov.counts("m")
    assert n.tolist() == [o.size for o in outcomes["m"]]
    assert c.tolist() == [int(o.sum()) for o in outcomes["m"]]
    for p in (0, 3, 49):
        np.testing.assert_array_equal(cov.outcomes("m", p), outcomes["m"][p])
    assert "3" not in cov.solved("m").tolist()


def test_bitset_roundtrip_and_popcount() -> None:
    bits = np.random.default_rng(0).random(1000) < 0.5
    words = to_bitset(bits)
    assert words.dtype == np.uint64 and words.size == 16
    np.testing.assert_array_equal(from_bitset(words, 1000), bits)
    assert int(_core.row_popcount(words[None, :])[0]) == int(bits.sum())


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda cov: cov.table("a", "zzz"), "unknown model 'zzz'"),
        (lambda cov: cov.table("a", "a"), "two different models"),
        (lambda cov: cov.solved("a", k=3, threshold=1.5), r"threshold must be in \[0, 1\]"),
        (lambda cov: cov.solved("a", k=3, threshold=float("nan")), r"threshold must be in \[0, 1\]"),
        (lambda cov: cov.solved("a", k=9), "k=9 exceeds n=4 for model 'a', problem_id '1'"),
    ],
)
def test_bad_calls(call, match) -> None:  # type: ignore[no-untyped-def]
    cov = Coverage.from_arrays(["1", "2"], {"a": (4, [0, 1]), "b": (4, [1, 1])})
    with pytest.raises(ValueError, match=match):
        call(cov)


def test_bad_construction() -> None:
    with pytest.raises(ValueError, match="duplicate problem_id '1'"):
        Coverage.from_arrays(["1", "1"], {"a": (4, [0, 1])})
    with pytest.raises(ValueError, match="only 1 model"):
        Coverage.from_arrays(["1"], {"a": (4, [0])}).matrix()
    with pytest.raises(ValueError, match=r"c\[0\] exceeds n"):
        Coverage.from_arrays(["1"], {"a": (4, [5])})
    with pytest.raises(ValueError, match="outcomes must be booleans"):
        Coverage.from_outcomes(["1"], {"a": [[0, 2]]})


def test_constructor_takes_a_count_source(math500_path: Path) -> None:
    cov = Coverage(math500_path)
    t = cov.table("base", "simplerl")
    assert (t["both"], t["only_a"], t["only_b"], t["neither"]) == (462, 19, 3, 16)
    table = pa.table({"problem_id": ["1", "2"], "model": ["a", "b"], "n": [2, 2], "c": [1, 0]})
    with pytest.raises(ValueError, match="missing for model"):
        Coverage(table)
