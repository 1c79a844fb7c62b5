"""Judging a document's n responses against its reference, shared by the lm-eval and lighteval integrations:
math with passkcore's math verifier (math-verify in passkcore's worker pool, under time and memory
limits), ``exact`` text, or the user's callable; and the checks every metric option gets (ValueError,
never TypeError, naming the option and value).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Union

import numpy as np

from passkcore.verify.math import EXTRACT_POLICIES
from passkcore.verify.math_pool import verify_math
from passkcore.verify.verdict import Verdict

Judge = Union[str, Callable[[str, str], bool]]
MATH_OPTIONS = {"extract": "fallback", "timeout_s": 10.0, "memory_mb": 1024, "workers": 1}


def checked_ks(k: Any, n: int) -> list[int]:
    raw = list(k) if isinstance(k, (list, tuple)) else [k]
    if not raw:
        raise ValueError("k is empty: ask for at least one k")
    ks: list[int] = []
    for v in raw:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"k must be a positive int or a list of them, got k={v!r}")
        if v > n:
            raise ValueError(f"k={int(v)} exceeds the document's n={n} responses (set repeats >= k)")
        if int(v) not in ks:
            ks.append(int(v))
    return ks


def checked_options(kwargs: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(kwargs) - set(defaults))
    if unknown:
        raise ValueError(f"unknown metric option(s) {', '.join(unknown)}; known: {', '.join(sorted(defaults))}")
    opts = {**defaults, **kwargs}
    for name, value in opts.items():
        want = type(defaults[name])
        if want is str:
            if not isinstance(value, str):
                raise ValueError(f"{name} must be a string, got {name}={value!r}")
        elif isinstance(value, bool) or not isinstance(value, (int, float) if want is float else int) or not value > 0:
            raise ValueError(f"{name} must be a positive {want.__name__}, got {name}={value!r}")
    return opts


def math_verdicts(responses: list[str], gold: str, opts: dict[str, Any]) -> list[Verdict]:
    if opts["extract"] not in EXTRACT_POLICIES:
        raise ValueError(f"extract must be one of {EXTRACT_POLICIES}, got extract={opts['extract']!r}")
    return verify_math([(r, gold) for r in responses], workers=int(opts["workers"]), timeout_s=float(opts["timeout_s"]),
                       memory_mb=int(opts["memory_mb"]), extract=str(opts["extract"]))


def judged(responses: list[str], gold: str, judge: Judge, opts: dict[str, Any]) -> tuple[list[bool], list[Any]]:
    """Per response: correct or not, and its answer class key (None: no answer, abstains in maj@k).
    ``math``: math-verify's verdict and its canonical answer; ``exact``: whitespace-stripped equality,
    the stripped text as the class; a callable ``judge(response, reference) -> bool``: the stripped text."""
    if judge == "math":
        verdicts = math_verdicts(responses, gold, opts)
        for v in verdicts:  # the pool reports a gold math-verify cannot parse as each sample's crash
            if v.reason == "crashed" and "reference answer" in v.detail:
                raise ValueError(f"the reference {gold!r} cannot be judged: {v.detail}")
        return [v.passed for v in verdicts], [v.answer_key for v in verdicts]
    if judge == "exact":
        target = gold.strip()
        return [r.strip() == target for r in responses], [r.strip() for r in responses]
    if callable(judge):
        correct = []
        for i, r in enumerate(responses):
            verdict = judge(r, gold)
            if not isinstance(verdict, (bool, np.bool_)):
                raise ValueError(f"judge returned {verdict!r} for response {i}; it must return a bool")
            correct.append(bool(verdict))
        return correct, [r.strip() for r in responses]
    raise ValueError(f"judge must be 'math', 'exact' or a callable(response, reference) -> bool, got judge={judge!r}")




def maj_classes(correct: list[bool], keys: list[Any]) -> tuple[list[int], int, int]:
    """Answer classes for passkcore.maj_at_k: class sizes, the correct class's index (-1: none) and the
    abstaining count. Every correct response is in the one correct class; the others group by key;
    a None key abstains."""
    sizes: dict[Any, int] = {}
    abstain = 0
    correct_key = ("correct",)  # a tuple: never equal to a text or math answer key
    for ok, key in zip(correct, keys):
        if ok:
            key = correct_key
        elif key is None:
            abstain += 1
            continue
        sizes[key] = sizes.get(key, 0) + 1
    names = list(sizes)
    return [sizes[n] for n in names], names.index(correct_key) if correct_key in sizes else -1, abstain
