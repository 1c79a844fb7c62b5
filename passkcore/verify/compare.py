"""Comparisons of a program's plain-data output with the expected one, in the trusted process.

Both sides are plain builtins (wire.py rebuilt the program's side), so ``==`` here is the builtins'
own: no candidate ``__eq__`` can run.
"""

from __future__ import annotations

import math
from typing import Any, Optional

REL_TOL = 1e-6  # relative tolerance on floats of the function-io format, on top of the problem's atol


def _number(v: Any) -> bool:
    return type(v) in (int, float)


def values_equal(got: Any, expected: Any, atol: Optional[float] = None, depth: int = 0) -> bool:
    """``got == expected`` where floats may differ by ``atol`` or ``REL_TOL`` relative, lists and tuples
    match each other (JSON has no tuples) and bools are not numbers."""
    if depth > 100:
        return False
    if (type(got) is bool) != (type(expected) is bool):
        return False
    if _number(got) and _number(expected) and (type(got) is float or type(expected) is float):
        if math.isnan(got) or math.isnan(expected):
            return math.isnan(got) and math.isnan(expected)
        return math.isclose(got, expected, rel_tol=REL_TOL, abs_tol=atol or 0.0)
    if type(got) in (list, tuple) and type(expected) in (list, tuple):
        return len(got) == len(expected) and all(
            values_equal(g, e, atol, depth + 1) for g, e in zip(got, expected))
    if type(got) is dict and type(expected) is dict:
        return got.keys() == expected.keys() and all(
            values_equal(got[k], expected[k], atol, depth + 1) for k in got)
    return type(got) is type(expected) and bool(got == expected)


def _token_equal(got: str, expected: str, atol: Optional[float]) -> bool:
    if got == expected:
        return True
    if atol is None:
        return False
    try:
        g, e = float(got), float(expected)
    except ValueError:
        return False
    return math.isfinite(g) and math.isfinite(e) and abs(g - e) <= atol


def stdout_equal(got: str, expected: str, atol: Optional[float] = None) -> bool:
    """Whitespace-separated tokens equal; with ``atol``, numeric tokens within it."""
    g, e = got.split(), expected.split()
    return len(g) == len(e) and all(_token_equal(a, b, atol) for a, b in zip(g, e))


def preview(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
