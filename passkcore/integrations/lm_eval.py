"""lm-evaluation-harness metric functions over all ``repeats`` responses of a document.

lm-eval scores only the first of a task's ``repeats`` responses unless the task adds filters by hand, and
its maj@k is ``Counter.most_common`` over the first k. With a task that keeps every response (a filter such
as ``take_first_k`` with k = repeats, no ``take_first``), lm-eval calls a generate_until metric as
``fn(references=[gold], predictions=[responses], **kwargs)``, ``responses`` the n filtered responses, and
the metric_list entry's extra keys (``k:``, ``judge:``) as kwargs. These return the document's exact
unbiased value per k, so ``aggregation: mean`` gives the benchmark's pass@k (maj@k) with lm-eval's own
standard error. In a task YAML::

    metric_list:
      - metric: !function passkcore.integrations.lm_eval.pass_at_k
        aggregation: mean
        higher_is_better: true
        k: [1, 4, 16]

Task YAMLs ready to include live in ``lm_eval_tasks/`` (``tasks_dir()``; ``lm_eval --include_path``).

Bad input is a ValueError naming the field and value, never a TypeError: lm-eval catches TypeError and
silently calls the metric again with another signature.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np

import passkcore
from passkcore.integrations.code import shared_runner
from passkcore.verify.math import EXTRACT_POLICIES
from passkcore.verify.math_pool import verify_math
from passkcore.verify.verdict import Verdict

Judge = Union[str, Callable[[str, str], bool]]
_MATH_OPTIONS = {"extract": "fallback", "timeout_s": 10.0, "memory_mb": 1024, "workers": 1}
_CODE_OPTIONS = {"num_workers": 1, "timeout": 3.0}


def tasks_dir() -> Path:
    """The folder of passkcore's lm-eval task YAMLs, for ``lm_eval --include_path``."""
    return Path(__file__).with_name("lm_eval_tasks")


def _responses(predictions: Any) -> list[str]:
    """The document's n responses: ``predictions[0]``, a list (repeats) or one string (n = 1)."""
    if isinstance(predictions, (str, bytes)) or not isinstance(predictions, Sequence) or len(predictions) != 1:
        raise ValueError(f"predictions must be a one-element list (the document's responses), got {predictions!r:.200}")
    resps = predictions[0]
    if isinstance(resps, str):
        return [resps]
    if isinstance(resps, bytes) or not isinstance(resps, Sequence) or len(resps) == 0:
        raise ValueError(f"predictions[0] must be a response string or a non-empty list of them, got {resps!r:.200}")
    for i, r in enumerate(resps):
        if not isinstance(r, str):
            raise ValueError(f"predictions[0][{i}] must be a string, got {type(r).__name__}: {r!r:.100}")
    return list(resps)


def _reference(references: Any) -> str:
    if isinstance(references, (str, bytes)) or not isinstance(references, Sequence) or len(references) != 1:
        raise ValueError(f"references must be a one-element list (the document's gold answer), got {references!r:.200}")
    gold = references[0]
    if isinstance(gold, (list, tuple, dict, set)) or gold is None:
        raise ValueError(f"references[0] must be one answer (a string or a number), got {gold!r:.200}")
    return str(gold)


def _ks(k: Any, n: int) -> list[int]:
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


def _options(kwargs: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
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


def _math_verdicts(responses: list[str], gold: str, opts: dict[str, Any]) -> list[Verdict]:
    if opts["extract"] not in EXTRACT_POLICIES:
        raise ValueError(f"extract must be one of {EXTRACT_POLICIES}, got extract={opts['extract']!r}")
    return verify_math([(r, gold) for r in responses], workers=int(opts["workers"]), timeout_s=float(opts["timeout_s"]),
                       memory_mb=int(opts["memory_mb"]))


def judged(responses: list[str], gold: str, judge: Judge, opts: dict[str, Any]) -> tuple[list[bool], list[Any]]:
    """Per response: correct or not, and its answer class key (None: no answer, abstains in maj@k).
    ``math``: math-verify's verdict and its canonical answer; ``exact``: whitespace-stripped equality,
    the stripped text as the class; a callable ``judge(response, reference) -> bool``: the stripped text."""
    if judge == "math":
        verdicts = _math_verdicts(responses, gold, opts)
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


def pass_at_k(references: Sequence[Any], predictions: Sequence[Any], k: Union[int, Sequence[int]] = 1,
              judge: Judge = "math", **kwargs: Any) -> dict[str, float]:
    """``{"pass@k": value}`` per k: the document's unbiased pass@k from its n responses (exact, C++ core).
    Options (metric_list keys): ``extract`` (math: fallback or boxed), ``timeout_s``, ``memory_mb``, ``workers``."""
    opts = _options(kwargs, _MATH_OPTIONS)
    responses, gold = _responses(predictions), _reference(references)
    ks = _ks(k, len(responses))
    correct, _ = judged(responses, gold, judge, opts)
    values = passkcore.pass_at_k(len(responses), [int(sum(correct))], ks)
    return {f"pass@{kk}": float(v) for kk, v in zip(ks, np.asarray(values).reshape(-1))}


def maj_at_k(references: Sequence[Any], predictions: Sequence[Any], k: Union[int, Sequence[int]] = 1,
             judge: Judge = "math", **kwargs: Any) -> dict[str, float]:
    """``{"maj@k": value}`` per k: the chance that the correct answer class wins the vote of k responses
    drawn without replacement (ties split evenly, responses without an answer abstain; passkcore.maj_at_k).
    Classes: math-verify equivalence of the extracted answers (``math``) or the stripped text; every
    correct response is in the one correct class."""
    opts = _options(kwargs, _MATH_OPTIONS)
    responses, gold = _responses(predictions), _reference(references)
    ks = _ks(k, len(responses))
    correct, keys = judged(responses, gold, judge, opts)
    sizes: dict[Any, int] = {}
    abstain = 0
    for ok, key in zip(correct, keys):
        if ok:
            key = ("\x00correct",)  # a tuple: never equal to a string key
        elif key is None:
            abstain += 1
            continue
        sizes[key] = sizes.get(key, 0) + 1
    names = list(sizes)
    correct_index = names.index(("\x00correct",)) if ("\x00correct",) in sizes else -1
    if not names:
        return {f"maj@{kk}": 0.0 for kk in ks}
    values = passkcore.maj_at_k([np.asarray([sizes[n] for n in names], dtype=np.int64)], [correct_index], ks,
                                abstain=[abstain])
    return {f"maj@{kk}": float(v) for kk, v in zip(ks, np.asarray(values).reshape(-1))}


def code_pass_at_k(references: Sequence[Any], predictions: Sequence[Any], k: Union[int, Sequence[int]] = 1,
                   **kwargs: Any) -> dict[str, float]:
    """``{"pass@k": value}`` per k for a code task (lm-eval's humaneval/mbpp ``pass_at_k``, sandboxed):
    ``predictions[0]`` the document's n programs, ``references[0]`` the test code calling them (HumanEval:
    ``{{test}}\\ncheck({{entry_point}})``). Options: ``num_workers``, ``timeout`` (seconds per program)."""
    opts = _options(kwargs, _CODE_OPTIONS)
    programs, tests = _responses(predictions), _reference(references)
    ks = _ks(k, len(programs))
    outcomes = shared_runner(int(opts["num_workers"]), float(opts["timeout"])).run([(p, tests) for p in programs])
    c = sum(o.passed for o in outcomes)
    values = passkcore.pass_at_k(len(programs), [c], ks)
    return {f"pass@{kk}": float(v) for kk, v in zip(ks, np.asarray(values).reshape(-1))}


def build_predictions(resps: Sequence[Sequence[str]], docs: Sequence[dict[str, Any]]) -> list[list[str]]:
    """lm-eval ``custom`` filter for HumanEval-style tasks: each response appended to its document's
    ``prompt`` (the program the tests run), keeping all n responses."""
    return [[str(doc["prompt"]) + r for r in resp] for resp, doc in zip(resps, docs)]
