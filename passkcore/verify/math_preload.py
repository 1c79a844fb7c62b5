"""Imported by the math workers' fork server (``math_server.BOOT``), never by library code: importing it loads
math-verify and sympy and warms them, so every worker forked afterwards starts ready.

Measured here: the import costs ~0.9 s, and a process's first ``check_math`` another ~0.15 s (regex
compilation, the LaTeX parser's tables); paid once per fork server instead of once per worker.
"""

from __future__ import annotations

from passkcore.extras import needs_extra

with needs_extra("verify", by=__name__):
    import math_verify  # noqa: F401 - loaded here so the forked workers inherit it
    import sympy  # noqa: F401

from passkcore.verify.math import check_math

for _response, _gold in (("\\boxed{\\frac{1}{2}}", "0.5"), ("so x = 3", "3"), ("$x^2+1$", "x^2+1")):
    for _policy in ("fallback", "boxed"):
        check_math(_response, _gold, _policy)
