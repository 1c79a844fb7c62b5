"""passkcore inside Inspect (``inspect_ai``): epoch reducers for exact pass@k, maj@k and G-pass@k, and a
metric that reports pass@k with its interval.

    from inspect_ai import Epochs, Task
    from passkcore.integrations.inspect import passk_g_pass_at, passk_maj_at, passk_pass_at, passk_pass_at_k

    Task(..., scorer=match(), metrics=[passk_pass_at_k(8)],
         epochs=Epochs(16, [passk_pass_at(1), passk_pass_at(8), passk_maj_at(8)]))

Each reducer sees one sample's epoch scores. n = its scored epochs (NaN values are unscored, as in
Inspect's own reducers), c = those whose value, read by ``value_to_float`` (C 1, P 0.5, I/N 0, numbers,
booleans), is >= ``value`` (default 1.0). The per-sample value is passkcore's unbiased estimator on
(n, c), the function ``passk estimate`` applies per problem; k above a sample's n gives NaN (unscored),
as Inspect's ``pass_at`` does. maj@k groups the epochs' ``Score.answer`` into answer classes (the
correct epochs one class, epochs without an answer abstaining), as ``passk estimate --metric maj@k`` does
with a run's answer keys. Every reduced score keeps ``metadata["passk"] = {"n", "c", "k"}``; the metric
``passk_pass_at_k(k)`` reads those counts and reports the mean pass@k over samples with the
``passkcore.numbers.stats.pass_at_k_interval`` interval for each target: ``benchmark`` (these problems,
their samples random) and ``population`` (problems like these).

Inspect names a reducer with a ``k`` parameter ``<name>_<k>`` in its logs (``passk_pass_at_8``): give
one G-pass@k tau per k, or the log has two reductions of the same name.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any, Optional

import numpy as np

from passkcore.extras import needs_extra
from passkcore.numbers.estimate import pass_at_k
from passkcore.numbers.majority import maj_at_k
from passkcore.numbers.metrics import g_pass_at_k
from passkcore.numbers.stats import TARGETS, pass_at_k_interval

with needs_extra("inspect-ai", by=__name__):
    from inspect_ai.scorer import Metric, SampleScore, Score, ScoreReducer, ValueToFloat, metric, score_reducer
    from inspect_ai.scorer import value_to_float as inspect_value_to_float

# Inspect's own reading of a value (C/I/P/N, booleans, numbers), the default of every reducer here.
DEFAULT_TO_FLOAT = inspect_value_to_float()


def _check_k(k: int, name: str = "k") -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"{name} must be a positive integer, got {k!r}")


def _one(values: Any) -> float:
    """The one number of a one-problem result (numpy arrays of one element)."""
    return float(np.asarray(values, dtype=np.float64).reshape(-1)[0])


def _scored(scores: list[Score]) -> list[Score]:
    """The epochs with a value (NaN is Inspect's unscored sentinel)."""
    return [s for s in scores if not (s.value is None or (isinstance(s.value, float) and math.isnan(s.value)))]


def _verdicts(scores: list[Score], value: float, to_float: Optional[ValueToFloat]) -> list[bool]:
    to_float = to_float or DEFAULT_TO_FLOAT
    out = []
    for i, s in enumerate(scores):
        if isinstance(s.value, (dict, list)):
            raise ValueError(f"passkcore reducers need one scalar value per epoch; scored epoch {i} (NaN epochs left out) has a "
                             f"{type(s.value).__name__} value (choose one key with a scorer of its own)")
        out.append(to_float(s.value) >= value)
    return out


def _counted(scores: list[Score], k: int, value: float, to_float: Optional[ValueToFloat],
             what: str) -> tuple[list[Score], list[bool], dict[str, Any], Optional[Score]]:
    """The scored epochs, their verdicts, the (n, c, k) metadata the metrics read, and the NaN score
    to return when fewer than k epochs were scored (else None)."""
    scored = _scored(scores)
    verdicts = _verdicts(scored, value, to_float)
    n, c = len(verdicts), sum(verdicts)
    counts = {"passk": {"n": n, "c": c, "k": k}}
    short = Score(value=float("nan"), explanation=f"{what}: {n} scored epochs < k = {k}", metadata=counts)
    return scored, verdicts, counts, short if n < k else None


def _reduced(scores: list[Score], number: Callable[[int, int], float], k: int, value: float,
             to_float: Optional[ValueToFloat], what: str) -> Score:
    _, verdicts, counts, short = _counted(scores, k, value, to_float, what)
    if short is not None:
        return short
    n, c = len(verdicts), sum(verdicts)
    return Score(value=float(number(n, c)), explanation=f"{what} from {c} of {n} scored epochs correct",
                 metadata=counts)


@score_reducer(name="passk_pass_at")
def passk_pass_at(k: int, value: float = 1.0, value_to_float: Optional[ValueToFloat] = None) -> ScoreReducer:
    """Unbiased pass@k of a sample's scored epochs (passkcore's estimator, exact for any n >= k)."""
    _check_k(k)

    def reduce(scores: list[Score]) -> Score:
        return _reduced(scores, lambda n, c: _one(pass_at_k(n, c, k)), k, value, value_to_float, f"pass@{k}")

    return reduce


@score_reducer(name="passk_g_pass_at")
def passk_g_pass_at(k: int, tau: float = 0.5, value: float = 1.0,
                    value_to_float: Optional[ValueToFloat] = None) -> ScoreReducer:
    """G-pass@k_tau: the chance that at least max(ceil(tau k), 1) of k epochs drawn without replacement are correct."""
    _check_k(k)
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not 0 <= tau <= 1:
        raise ValueError(f"tau must be in [0, 1], got {tau!r}")

    def reduce(scores: list[Score]) -> Score:
        return _reduced(scores, lambda n, c: _one(g_pass_at_k(n, c, k, tau)), k, value, value_to_float, f"G-pass@{k}_{tau:g}")

    return reduce


def _classes(scored: list[Score], verdicts: list[bool]) -> tuple[list[int], int, int]:
    """Answer-class sizes (the correct class first), the correct class's index (-1: none), abstentions."""
    wrong = Counter(str(s.answer) for s, ok in zip(scored, verdicts) if not ok and s.answer is not None)
    abstain = sum(1 for s, ok in zip(scored, verdicts) if not ok and s.answer is None)
    right = sum(verdicts)
    sizes = ([right] if right else []) + [wrong[key] for key in sorted(wrong)]
    return sizes, 0 if right else -1, abstain


@score_reducer(name="passk_maj_at")
def passk_maj_at(k: int, value: float = 1.0, value_to_float: Optional[ValueToFloat] = None) -> ScoreReducer:
    """Unbiased maj@k over a sample's scored epochs, answer classes from ``Score.answer``."""
    _check_k(k)

    def reduce(scores: list[Score]) -> Score:
        scored, verdicts, counts, short = _counted(scores, k, value, value_to_float, f"maj@{k}")
        if short is not None:
            return short
        n = len(verdicts)
        sizes, correct, abstain = _classes(scored, verdicts)
        if not sizes:  # every epoch abstained: no majority can be right
            return Score(value=0.0, explanation=f"maj@{k}: no epoch has an answer", metadata=counts)
        number = _one(maj_at_k([np.asarray(sizes, dtype=np.int64)], [correct], k, abstain=[abstain]))
        return Score(value=number, explanation=f"maj@{k} over {len(sizes)} answer classes of {n} scored epochs",
                     metadata=counts)

    return reduce


@metric(name="passk_pass_at_k")
def passk_pass_at_k(k: int, ci: float = 0.95, resamples: int = 2000, seed: int = 0) -> Metric:
    """Mean pass@k over samples with its ``ci`` interval for both targets, from the (n, c) the passkcore
    reducers keep; ``{"pass@k", "benchmark_low", "benchmark_high", "population_low", "population_high"}``.
    Samples reduced by other reducers keep no counts: the metric is NaN then."""
    _check_k(k)

    def compute(scores: list[SampleScore]) -> dict[str, float]:

        counts = [_counts(s.score) for s in scores]
        keep = [nc for nc in counts if nc is not None and nc[0] >= k]
        nan = float("nan")
        if not keep or len(keep) != len(counts):
            return {f"pass@{k}": nan, **{f"{t}_{e}": nan for t in TARGETS for e in ("low", "high")}}
        n = np.array([nc[0] for nc in keep], dtype=np.int64)
        c = np.array([nc[1] for nc in keep], dtype=np.int64)
        out: dict[str, float] = {}
        for target in TARGETS:
            est, low, high = pass_at_k_interval(n, c, [k], target=target, ci=ci, resamples=resamples, seed=seed)
            out[f"pass@{k}"] = float(est[0])
            out[f"{target}_low"], out[f"{target}_high"] = float(low[0]), float(high[0])
        return out

    return compute


def _counts(score: Score) -> Any:
    meta = (score.metadata or {}).get("passk")
    if isinstance(meta, dict) and isinstance(meta.get("n"), int) and isinstance(meta.get("c"), int):
        return meta["n"], meta["c"]
    return None


__all__ = ["passk_g_pass_at", "passk_maj_at", "passk_pass_at", "passk_pass_at_k"]
