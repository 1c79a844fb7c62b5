"""Math answers: the boxed answer (or, failing that, the last expression) checked with math-verify.

math-verify's own timeouts use signal.alarm, which fails outside a main thread; they are disabled
here and the batch pool enforces a per-sample wall-clock limit instead.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from passkcore.verify.verdict import Verdict

VERIFIER = "math-verify"
# math-verify logs a warning on every call with its timeouts disabled; the pool enforces ours.
logging.getLogger("math_verify").setLevel(logging.ERROR)


@lru_cache(maxsize=4096)
def _parse_gold(gold: str) -> Any:
    from math_verify import parse

    text = gold if ("$" in gold or "\\boxed" in gold) else f"${gold}$"
    parsed = parse(text, parsing_timeout=None)
    if not parsed:
        raise ValueError(f"reference answer {gold!r} could not be parsed by math-verify")
    return parsed


def check_math(response: str, gold: str) -> Verdict:
    """Extracts the answer from ``response`` (a ``\\boxed{}`` first) and compares it with ``gold``."""
    if not isinstance(response, str) or not isinstance(gold, str):
        raise TypeError("response and gold must be strings")
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    gold_parsed = _parse_gold(gold)
    pred = parse(
        response,
        extraction_config=[LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()],
        parsing_timeout=None,
    )
    if not pred:
        return Verdict(False, "no_answer", None, VERIFIER)
    extracted = str(pred[-1])
    ok = bool(verify(gold_parsed, pred, timeout_seconds=None))
    return Verdict(ok, "passed" if ok else "wrong_answer", extracted, VERIFIER)
