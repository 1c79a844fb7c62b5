"""Math answers: an answer taken from the response under an extraction policy, checked with math-verify.

Policies (``EXTRACT_POLICIES``):

- ``fallback`` (default): the last ``\\boxed{}`` answer first; failing that, the last LaTeX or plain
  expression (math-verify's own fallback; the paper's grader also falls back to the last number).
- ``boxed``: only a ``\\boxed{}`` (or ``\\fbox{}``) answer counts; a response without one is
  ``no_answer``.

math-verify's own timeouts use signal.alarm, which fails outside a main thread and which it can
swallow; they are disabled here. ``check_math`` itself has no time or memory limit: batches go through
``passkcore.verify.math_pool``, whose worker processes are killed when a sample overruns.
"""

from __future__ import annotations

import hashlib
import logging
import re
from functools import lru_cache
from typing import Any

from passkcore.verify.verdict import Verdict

VERIFIER = "math-verify"
EXTRACT_POLICIES = ("fallback", "boxed")
# Longer canonical answers are stored as a digest: equal digests still mean equal answers, and a
# 200,000-character expression does not land in every verdict row twice.
ANSWER_KEY_MAX = 200
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


def _extract(response: str, extract: str) -> list[Any]:
    """math-verify's parse of the response under ``extract``: [sympy value, extracted string] or []."""
    from latex2sympy2_extended.math_normalization import extract_boxed_content
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    if extract == "fallback":
        configs: list[Any] = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
        return list(parse(response, extraction_config=configs, parsing_timeout=None))
    if "\\boxed" not in response and "\\fbox" not in response:
        return []
    # Only the boxed content is handed to the parser, so no "answer: ..." or trailing expression
    # elsewhere in the response can stand in for a boxed answer that does not parse.
    boxed = "\\boxed{" + extract_boxed_content(response, mode="last") + "}"
    configs = [LatexExtractionConfig(boxed_match_priority=0, try_extract_without_anchor=False)]
    return list(parse(boxed, extraction_config=configs, parsing_timeout=None))


def answer_key(value: Any) -> str:
    """A canonical string of an extracted answer: math-verify's parsed sympy value printed by sympy
    (``\\frac{1}{2}``, ``1/2`` and ``\\dfrac12`` all give ``1/2``), or the extracted string when it
    did not parse, whitespace collapsed; a digest when longer than ``ANSWER_KEY_MAX``."""
    key = re.sub(r"\s+", " ", str(value)).strip()
    if len(key) > ANSWER_KEY_MAX:
        key = "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return key


def check_math(response: str, gold: str, extract: str = "fallback") -> Verdict:
    """Extracts the answer from ``response`` under the ``extract`` policy (``fallback``: a
    ``\\boxed{}`` first, else the last expression; ``boxed``: a ``\\boxed{}`` only) and compares it
    with ``gold``. The verdict records the policy and the answer's ``answer_key``."""
    if not isinstance(response, str) or not isinstance(gold, str):
        raise TypeError("response and gold must be strings")
    if extract not in EXTRACT_POLICIES:
        raise ValueError(f"extract must be one of {EXTRACT_POLICIES}, got {extract!r}")
    from math_verify import verify

    gold_parsed = _parse_gold(gold)
    pred = _extract(response, extract)
    if not pred:
        return Verdict(False, "no_answer", None, VERIFIER, extract_policy=extract)
    ok = bool(verify(gold_parsed, pred, timeout_seconds=None))
    return Verdict(ok, "passed" if ok else "wrong_answer", str(pred[-1]), VERIFIER,
                   answer_key=answer_key(pred[0]), extract_policy=extract)
