"""maj@k, G-pass@k and Bayes@N throughput: a time bound and ratios to the reference libraries (same run)."""

from __future__ import annotations

import importlib
import time
from typing import Any

import numpy as np
import pytest
from scorio.eval.gpass import g_pass_at_k_tau as scorio_g_pass_at_k_tau
from scorio.eval.gpass import mg_pass_at_k as scorio_mg_pass_at_k
from scorio.eval.pass_at_k import pass_at_k_ci

from benches.conftest import own_time, peer_time
from passkcore import bayes_pass_at_k, g_pass_at_k, maj_at_k, mg_pass_at_k


def maj_inputs(problems: int = 10_000, n: int = 256, classes: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Class sizes from a flat Dirichlet over 20 answers (one dominant answer, a tail of rare ones, as
    sampled LLM answers look), the correct class drawn uniformly, 1 in 21 problems with none."""
    rng = np.random.default_rng(seed)
    sizes = np.stack([rng.multinomial(n, rng.dirichlet(np.ones(classes))) for _ in range(problems)])
    return sizes, rng.integers(-1, classes, size=problems)


def test_maj_at_k_10k_problems_every_k(benchmark: Any) -> None:
    """10,000 problems, n = 256 in 20 classes, every k = 1..256: target under a second."""
    sizes, correct = maj_inputs()
    ks = np.arange(1, 257)
    cpu: list[float] = []

    def run() -> np.ndarray:
        start = time.process_time()
        try:
            return maj_at_k(sizes, correct, ks)
        finally:
            cpu.append(time.process_time() - start)

    out = benchmark.pedantic(run, rounds=3, iterations=1)
    assert out.shape == (10_000, 256) and np.all((out >= 0) & (out <= 1 + 1e-12))
    seconds = own_time(benchmark)
    # CPU time over all threads beside the wall time: on a shared machine the wall time measures the load.
    benchmark.extra_info.update(seconds=seconds, cpu_s=min(cpu), values_per_s=out.size / seconds)
    assert seconds < 1.0, f"maj@k took {seconds:.2f} s"


N, PROBLEMS, KS, TAUS = 64, 2000, [1, 4, 16, 64], [0.0, 0.25, 0.5, 0.75, 1.0]


def _counts() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.binomial(N, rng.beta(0.7, 0.5, size=PROBLEMS))


def test_g_pass_vs_lighteval(benchmark: Any) -> None:
    """G-pass@k at 5 taus and mG-pass@k, k in {1, 4, 16, 64}, 2,000 problems of n = 64: target >= 100x."""
    # Skips only while lighteval itself is absent; once installed, a broken import of its metrics
    # module fails here instead of skipping the comparison unnoticed.
    pytest.importorskip("lighteval")
    metrics_sample = importlib.import_module("lighteval.metrics.metrics_sample")
    c = _counts()

    def ours() -> tuple[np.ndarray, np.ndarray]:
        return g_pass_at_k(N, c, KS, TAUS).mean(axis=0), mg_pass_at_k(N, c, KS).mean(axis=0)

    g, mg = benchmark(ours)
    metric = metrics_sample.GPassAtK(k=KS, n=N, thresholds=TAUS)
    scores = [[1] * int(x) + [0] * (N - int(x)) for x in c]

    def peer() -> list[dict[str, float]]:
        return [metric.g_pass_at_k(s) for s in scores]

    ref = peer()
    t_peer = peer_time(peer, repeats=2)
    ratio = t_peer / own_time(benchmark)
    benchmark.extra_info.update(lighteval_s=t_peer, ratio_vs_lighteval=ratio)
    for j, k in enumerate(KS):
        assert mg[j] == pytest.approx(np.mean([r[f"mg-pass@{k}"] for r in ref]), abs=1e-12)
        for t, tau in enumerate(TAUS):
            assert g[j, t] == pytest.approx(np.mean([r[f"g-pass@{k}_{tau}"] for r in ref]), abs=1e-12)
    assert ratio >= 100, f"only {ratio:.0f}x lighteval"


def test_g_pass_vs_scorio(benchmark: Any) -> None:
    """The same G-pass@k / mG-pass@k figures against scorio 0.2.3 (dev extra: runs without lighteval;
    at these taus and k both read the same threshold m). The issue's >= 100x is against lighteval
    (above); scorio evaluates the pmf with scipy over all problems at once, so the ratio to it is far
    smaller (see docs/benchmarks.md) and the bound here only says native stays well ahead."""
    c = _counts()
    R = (np.arange(N)[None, :] < c[:, None]).astype(int)

    def ours() -> tuple[np.ndarray, np.ndarray]:
        return g_pass_at_k(N, c, KS, TAUS).mean(axis=0), mg_pass_at_k(N, c, KS).mean(axis=0)

    g, mg = benchmark(ours)

    def peer() -> tuple[list[list[float]], list[float]]:
        return [[scorio_g_pass_at_k_tau(R, k, t) for t in TAUS] for k in KS], [scorio_mg_pass_at_k(R, k) for k in KS]

    ref_g, ref_mg = peer()
    t_peer = peer_time(peer, repeats=10)
    ratio = t_peer / own_time(benchmark)
    benchmark.extra_info.update(scorio_s=t_peer, ratio_vs_scorio=ratio)
    np.testing.assert_allclose(g, ref_g, atol=1e-12)
    np.testing.assert_allclose(mg, ref_mg, atol=1e-12)
    assert ratio >= 10, f"only {ratio:.0f}x scorio"


def test_bayes_vs_scorio(benchmark: Any) -> None:
    """Bayes@N posterior pass@k with the 95% interval over problems, k in {1, 4, 16, 64}: target >= 100x."""
    c = _counts()
    R = (np.arange(N)[None, :] < c[:, None]).astype(int)
    res = benchmark(lambda: bayes_pass_at_k(N, c, KS))

    def peer() -> list[tuple[float, float, float, float]]:
        return [pass_at_k_ci(R, k) for k in KS]

    ref = peer()
    # Best of 30 (~0.25 s), not of 3: ours is the best of thousands of rounds, and on a loaded machine
    # a best of 3 for the peer read 12-16 ms against its 8 ms, inflating the ratio up to 2x.
    t_peer = peer_time(peer, repeats=30)
    ratio = t_peer / own_time(benchmark)
    benchmark.extra_info.update(scorio_s=t_peer, ratio_vs_scorio=ratio)
    np.testing.assert_allclose(res.overall_mean, [r[0] for r in ref], atol=1e-12)
    np.testing.assert_allclose(res.overall_low, [r[2] for r in ref], atol=1e-12)
    assert ratio >= 100, f"only {ratio:.0f}x scorio"
