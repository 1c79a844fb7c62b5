"""passkcore as verl's reward function: ``compute_score`` (verl's custom reward signature) and
``compute_score_batch`` (the keyword names verl's ``BatchRewardManager`` passes).

Each response gets ``{"score": float, "acc": bool, "pred": str | None}``:

- math (verl's math data sources, and any other whose ground truth is a string): math-verify against the
  ground truth in passkcore's killable math workers (passkcore.verify.math_pool); ``pred`` is the
  canonical extracted answer (``answer_key``), so maj@k on ``pred`` groups ``1/2`` with ``\\frac{1}{2}``;
- code (verl's code data sources, and any whose ground truth is a JSON object of tests): the last fenced
  block of the response run on the tests in passkcore's sandbox (programs.py); ``pred`` is a digest of
  the program's outputs on the tests (equal outputs, equal ``pred``).

Score 1.0 for a correct response, else 0.0 (``continuous=True``: a program's fraction of passed tests).
Nothing a response holds decides another's reward or stalls the batch: a math answer over its time limit
has its worker killed and scores 0; a program runs in its own sandbox under per-test time, memory and
process limits, and what it prints or exits with only counts through the comparisons made here.

Workers start on first use and are kept for the process (verl calls once per step): math workers by
math_pool, judges by programs.JUDGES; both end at interpreter exit, or with ``close()``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Any, Optional

import numpy as np

from passkcore.integrations.verl.programs import JUDGES, extract_program, problem_of, tests_of
from passkcore.problems import Problem
from passkcore.verify.math import EXTRACT_POLICIES
from passkcore.verify.math_pool import close_idle_workers, verify_math
from passkcore.verify.verdict import Verdict

# verl's own names (verl/utils/reward_score/__init__.py, default_compute_score).
MATH_SOURCES = frozenset({"openai/gsm8k", "lighteval/MATH", "DigitalLearningGmbH/MATH-lighteval",
                          "HuggingFaceH4/MATH-500", "math_dapo", "math", "math_dapo_reasoning"})
MATH_PREFIXES = ("aime", "numina_")
CODE_SOURCES = frozenset({"codecontests", "apps", "codeforces", "taco"})
KINDS = ("math", "code")
# Keywords verl hands some reward functions (reward loop managers, sandbox fusion): nothing here uses them.
VERL_KEYWORDS = frozenset({"reward_router_address", "reward_model_tokenizer", "sandbox_fusion_url",
                           "concurrent_semaphore", "memory_limit_mb"})
Result = dict[str, Any]


def _cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Options:
    """The keyword options of both functions (verl: ``custom_reward_function.reward_kwargs``).

    ``math_workers``/``code_workers``: parallel math workers and sandboxed judges of a batch (default: the
    CPUs this process may use); ``math_timeout_s``: wall-clock limit per math answer; ``code_timeout_s``:
    per test of a program; ``memory_mb``: address space of a math worker and of a program;
    ``math_extract``: ``fallback`` (a boxed answer, else the last expression) or ``boxed``;
    ``continuous``: a program scores its fraction of passed tests (verl's prime_code option);
    ``atol``: absolute tolerance on numbers a program prints or returns."""

    math_workers: int = 0
    code_workers: int = 0
    math_timeout_s: float = 5.0
    code_timeout_s: float = 5.0
    memory_mb: int = 1024
    math_extract: str = "fallback"
    continuous: bool = False
    atol: Optional[float] = None


_OPTION_NAMES = tuple(f.name for f in fields(Options))


def options(kwargs: Mapping[str, Any]) -> Options:
    """The options in ``kwargs`` (verl's own keywords ignored), checked; ValueError names a bad one."""
    unknown = sorted(set(kwargs) - set(_OPTION_NAMES) - VERL_KEYWORDS)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown}: passkcore's verl reward takes {list(_OPTION_NAMES)}")
    given = {k: v for k, v in kwargs.items() if k in _OPTION_NAMES}
    for name, least in (("math_workers", 0), ("code_workers", 0), ("memory_mb", 512)):
        value = given.get(name, least)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ValueError(f"{name} must be an int >= {least} (0 workers: one per CPU), got {value!r}")
    for name in ("math_timeout_s", "code_timeout_s"):
        value = given.get(name, 1.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    if given.get("math_extract", "fallback") not in EXTRACT_POLICIES:
        raise ValueError(f"math_extract must be one of {EXTRACT_POLICIES}, got {given['math_extract']!r}")
    atol = given.get("atol")
    if atol is not None and (isinstance(atol, bool) or not isinstance(atol, (int, float)) or not atol >= 0):
        raise ValueError(f"atol must be a non-negative number or None, got {atol!r}")
    opts = Options(**given)
    cpus = _cpus()
    return Options(**{**opts.__dict__, "math_workers": int(opts.math_workers) or cpus,
                      "code_workers": int(opts.code_workers) or cpus, "continuous": bool(opts.continuous)})


@dataclass(frozen=True)
class _Item:
    kind: str
    response: str
    gold: str = ""  # math
    program: Optional[str] = None  # code
    problem: Optional[Problem] = None  # code


def _kind(data_source: str, ground_truth: Any, extra_info: Any, where: str) -> str:
    override = extra_info.get("passk") if isinstance(extra_info, Mapping) else None
    if override is not None:
        if override not in KINDS:
            raise ValueError(f"{where}: extra_info['passk'] must be one of {KINDS}, got {override!r}")
        return str(override)
    if data_source in CODE_SOURCES:
        return "code"
    if data_source in MATH_SOURCES or data_source.startswith(MATH_PREFIXES):
        return "math"
    if tests_of(ground_truth) is not None:
        return "code"
    if isinstance(ground_truth, str):
        return "math"
    raise ValueError(f"{where}: data source {data_source!r} is not one of verl's, and its ground truth "
                     f"({type(ground_truth).__name__}: {str(ground_truth)[:80]!r}) is neither a string (math) nor a "
                     "JSON object of tests (code): say which with extra_info={'passk': 'math'} or {'passk': 'code'}")


def _gold(ground_truth: Any, data_source: str, where: str) -> str:
    if isinstance(ground_truth, np.generic):
        ground_truth = ground_truth.item()
    if isinstance(ground_truth, str):
        return ground_truth
    if isinstance(ground_truth, (int, float)) and not isinstance(ground_truth, bool):
        return str(ground_truth)
    raise ValueError(f"{where}: data source {data_source!r} is math, but its ground truth is "
                     f"{type(ground_truth).__name__} ({str(ground_truth)[:80]!r}), not an answer string")


def item(data_source: Any, solution_str: Any, ground_truth: Any, extra_info: Any, where: str) -> _Item:
    """What one response is judged as (ValueError naming ``where`` and the data source when unclear)."""
    if isinstance(data_source, np.generic):
        data_source = data_source.item()
    if not isinstance(data_source, str):
        raise ValueError(f"{where}: data_source must be a string, got {data_source!r}")
    if not isinstance(solution_str, str):
        raise ValueError(f"{where}: solution_str must be a string, got {type(solution_str).__name__}")
    kind = _kind(data_source, ground_truth, extra_info, where)
    if kind == "math":
        return _Item("math", solution_str, gold=_gold(ground_truth, data_source, where))
    tests = tests_of(ground_truth)
    if tests is None:
        raise ValueError(f"{where}: data source {data_source!r} is code, but its ground truth is not a JSON object "
                         f"with 'inputs' and 'outputs' ({str(ground_truth)[:80]!r})")
    program = extract_program(solution_str)
    problem = problem_of(tests, program or "", f"{where} (data source {data_source!r})")
    return _Item("code", solution_str, program=program, problem=problem)


def _math_result(verdict: Verdict) -> Result:
    return {"score": 1.0 if verdict.passed else 0.0, "acc": bool(verdict.passed), "pred": verdict.answer_key}


def _code_result(verdict: Optional[Verdict], opts: Options) -> Result:
    if verdict is None:  # no program in the response
        return {"score": 0.0, "acc": False, "pred": None}
    score = 1.0 if verdict.passed else 0.0
    if opts.continuous and not verdict.passed and verdict.tests_total:
        score = (verdict.tests_passed or 0) / verdict.tests_total
    return {"score": float(score), "acc": bool(verdict.passed), "pred": verdict.answer_key}


def _math(items: Sequence[_Item], opts: Options) -> list[Verdict]:
    if not items:
        return []
    return verify_math([(it.response, it.gold) for it in items], workers=min(opts.math_workers, len(items)),
                       timeout_s=opts.math_timeout_s, memory_mb=opts.memory_mb, extract=opts.math_extract)


def _code(items: Sequence[_Item], opts: Options) -> list[Verdict]:
    jobs = [(it.program or "", it.problem) for it in items if it.problem is not None]
    return JUDGES.judge_all(jobs, workers=opts.code_workers, timeout_s=opts.code_timeout_s, memory_mb=opts.memory_mb,
                            atol=opts.atol) if jobs else []


def score_items(items: Sequence[_Item], opts: Options) -> list[Result]:
    """Results in order: the programs go to ``code_workers`` judge threads (fed from a helper thread)
    while this thread runs the math answers through ``math_workers`` worker processes."""
    math = [i for i, it in enumerate(items) if it.kind == "math"]
    code = [i for i, it in enumerate(items) if it.kind == "code" and it.program is not None]
    results: list[Result] = [_code_result(None, opts)] * len(items)  # kept for responses without a program
    if code and math:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="passk-verl-code") as feeder:
            pending = feeder.submit(_code, [items[i] for i in code], opts)
            math_verdicts = _math([items[i] for i in math], opts)
            code_verdicts = pending.result()
    else:  # one kind only (and every single call): no helper thread
        math_verdicts = _math([items[i] for i in math], opts)
        code_verdicts = _code([items[i] for i in code], opts)
    for i, verdict in zip(math, math_verdicts):
        results[i] = _math_result(verdict)
    for i, verdict in zip(code, code_verdicts):
        results[i] = _code_result(verdict, opts)
    return results


def compute_score(data_source: Any, solution_str: str, ground_truth: Any, extra_info: Optional[dict[str, Any]] = None,
                  **kwargs: Any) -> Result:
    """verl's custom reward function (``custom_reward_function.name: compute_score``): one response's
    ``{"score", "acc", "pred"}``. ``extra_info={"passk": "math" | "code"}`` picks the verifier; keyword
    options: :class:`Options`. Thread-safe (verl's reward loop calls it from several threads)."""
    opts = options(kwargs)
    return score_items([item(data_source, solution_str, ground_truth, extra_info, "response")], opts)[0]


def _length(name: str, values: Any) -> int:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise ValueError(f"{name} must be a list with one entry per response, got {type(values).__name__}")
    return len(values)


def compute_score_batch(data_sources: Sequence[Any], solution_strs: Sequence[str], ground_truths: Sequence[Any],
                        extra_infos: Optional[Sequence[Optional[dict[str, Any]]]] = None, **kwargs: Any) -> list[Result]:
    """One ``{"score", "acc", "pred"}`` per response, in input order (verl's ``BatchRewardManager``:
    ``reward_model.reward_manager=batch``), math and code verified in parallel. Keyword options:
    :class:`Options`."""
    opts = options(kwargs)
    size = _length("solution_strs", solution_strs)
    infos = [None] * size if extra_infos is None else extra_infos
    for name, values in (("data_sources", data_sources), ("ground_truths", ground_truths), ("extra_infos", infos)):
        if _length(name, values) != size:
            raise ValueError(f"{name} has {len(values)} entries but solution_strs has {size}")
    items = [item(data_sources[i], solution_strs[i], ground_truths[i], infos[i], f"response {i}") for i in range(size)]
    return score_items(items, opts)


def close() -> None:
    """Ends the reward's idle math workers and its sandboxes now (they also end at interpreter exit)."""
    JUDGES.close()
    close_idle_workers()
