"""Bad input: a clear ValueError/TypeError naming the field, index and value; never a crash or NaN."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import passkcore as pk

BAD = [
    ((10, [11], 1), ValueError, r"c\[0\] exceeds n \(n=10, c=11\)"),
    ((10, [1, -1], 1), ValueError, r"c\[1\] must be non-negative"),
    (([5, 0], [1, 0], 1), ValueError, r"n\[1\] must be at least 1"),
    ((10, [1.5], 1), ValueError, r"c\[0\] is not an integer count"),
    ((10, [1.0, float("nan")], 1), ValueError, r"c\[1\] is not an integer count"),
    ((float("inf"), [1], 1), ValueError, r"n\[0\] is not an integer count"),
    (([10, 3], [1, 2], 5), ValueError, r"k=5 exceeds .* problem index 1 \(n=3\)"),
    ((10, [], 1), ValueError, "c is empty"),
    ((10, [1], 0), ValueError, r"k\[0\] must be at least 1"),
    ((10, [1], [1, -2]), ValueError, r"k\[1\] must be at least 1"),
    ((10, [1], []), ValueError, "k is empty"),
    ((10, [True], 1), TypeError, "booleans"),
    ((10, ["3"], 1), TypeError, "dtype"),
    ((10, [1, None], 1), TypeError, r"c\[1\] is not an integer count"),
    (([1, 2], [1], 1), ValueError, r"differ in length \(2 vs 1\)"),
    ((10, [[1, 2]], 1), ValueError, "must be 1-D"),
    ((2**40, [1], 1), ValueError, r"n\[0\] exceeds 2\^31"),
]


@pytest.mark.parametrize(("args", "exc", "match"), BAD)
@pytest.mark.parametrize("fn", [pk.pass_at_k, pk.pass_hat_k, pk.pass_at_k_curve])
def test_bad_input_is_named(fn, args, exc, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(exc, match=match):
        fn(*args)


def test_uint_and_small_int_dtypes_are_accepted() -> None:
    c = np.array([0, 3, 10], dtype=np.uint8)
    np.testing.assert_array_equal(pk.pass_at_k(np.int16(10), c, 2), pk.pass_at_k(10, [0, 3, 10], 2))


@settings(max_examples=300, deadline=None)
@given(
    hnp.arrays(np.int64, st.integers(0, 8), elements=st.integers(-5, 40)),
    hnp.arrays(np.int64, st.integers(0, 8), elements=st.integers(-5, 40)),
    hnp.arrays(np.int64, st.integers(0, 3), elements=st.integers(-2, 45)),
)
def test_fuzz_never_crashes_or_returns_nan(n, c, k) -> None:  # type: ignore[no-untyped-def]
    for fn in (pk.pass_at_k, pk.pass_hat_k):
        try:
            out = fn(n, c, k)
        except ValueError:
            continue
        assert np.isfinite(out).all() and (out >= 0).all() and (out <= 1).all()
        assert out.shape == (c.size, k.size)
