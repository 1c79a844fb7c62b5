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

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np

import passkcore
from passkcore.integrations.code import shared_runner
from passkcore.integrations.judging import MATH_OPTIONS, Judge, checked_ks, checked_options, judged, maj_classes

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


def pass_at_k(references: Sequence[Any], predictions: Sequence[Any], k: Union[int, Sequence[int]] = 1,
              judge: Judge = "math", **kwargs: Any) -> dict[str, float]:
    """``{"pass@k": value}`` per k: the document's unbiased pass@k from its n responses (exact, C++ core).
    Options (metric_list keys): ``extract`` (math: fallback or boxed), ``timeout_s``, ``memory_mb``, ``workers``."""
    opts = checked_options(kwargs, MATH_OPTIONS)
    responses, gold = _responses(predictions), _reference(references)
    ks = checked_ks(k, len(responses))
    correct, _ = judged(responses, gold, judge, opts)
    values = passkcore.pass_at_k(len(responses), [int(sum(correct))], ks)
    return {f"pass@{kk}": float(v) for kk, v in zip(ks, np.asarray(values).reshape(-1))}


def maj_at_k(references: Sequence[Any], predictions: Sequence[Any], k: Union[int, Sequence[int]] = 1,
             judge: Judge = "math", **kwargs: Any) -> dict[str, float]:
    """``{"maj@k": value}`` per k: the chance that the correct answer class wins the vote of k responses
    drawn without replacement (ties split evenly, responses without an answer abstain; passkcore.maj_at_k).
    Classes: math-verify equivalence of the extracted answers (``math``) or the stripped text; every
    correct response is in the one correct class."""
    opts = checked_options(kwargs, MATH_OPTIONS)
    responses, gold = _responses(predictions), _reference(references)
    ks = checked_ks(k, len(responses))
    correct, keys = judged(responses, gold, judge, opts)
    sizes, correct_index, abstain = maj_classes(correct, keys)
    if not sizes:
        return {f"maj@{kk}": 0.0 for kk in ks}
    values = passkcore.maj_at_k([np.asarray(sizes, dtype=np.int64)], [correct_index], ks, abstain=[abstain])
    return {f"maj@{kk}": float(v) for kk, v in zip(ks, np.asarray(values).reshape(-1))}


def code_pass_at_k(references: Sequence[Any], predictions: Sequence[Any], k: Union[int, Sequence[int]] = 1,
                   **kwargs: Any) -> dict[str, float]:
    """``{"pass@k": value}`` per k for a code task (lm-eval's humaneval/mbpp ``pass_at_k``, sandboxed):
    ``predictions[0]`` the document's n programs, ``references[0]`` the test code calling them (HumanEval:
    ``{{test}}\\ncheck({{entry_point}})``). Options: ``num_workers``, ``timeout`` (seconds per program)."""
    opts = checked_options(kwargs, _CODE_OPTIONS)
    programs, tests = _responses(predictions), _reference(references)
    ks = checked_ks(k, len(programs))
    outcomes = shared_runner(int(opts["num_workers"]), float(opts["timeout"])).run([(p, tests) for p in programs])
    c = sum(o.passed for o in outcomes)
    values = passkcore.pass_at_k(len(programs), [c], ks)
    return {f"pass@{kk}": float(v) for kk, v in zip(ks, np.asarray(values).reshape(-1))}


def build_predictions(resps: Sequence[Sequence[str]], docs: Sequence[dict[str, Any]]) -> list[list[str]]:
    """lm-eval ``custom`` filter for HumanEval-style tasks: each response appended to its document's
    ``prompt`` (the program the tests run), keeping all n responses."""
    return [[str(doc["prompt"]) + r for r in resp] for resp, doc in zip(resps, docs)]
