"""Coverage set algebra and the paired bootstrap against the straightforward numpy versions."""

from __future__ import annotations

from typing import Any

import numpy as np

import passkcore as pk
from benches.conftest import own_time, peer_time
from passkcore import _core
from passkcore.numbers.coverage import Coverage, to_bitset
from passkcore.numbers.stats import PairedBootstrap, numpy_bootstrap
from tests.conftest import MATH500


def test_matrix_10m_problems_16_models(benchmark: Any) -> None:
    """M x M "solved by row, not by column" for 10^7 problems x 16 models: target >= 10x numpy."""
    rng = np.random.default_rng(0)
    solved = rng.random((16, 10_000_000), dtype=np.float32) < np.linspace(0.2, 0.9, 16)[:, None]
    bitsets = np.stack([to_bitset(row) for row in solved])
    ours = benchmark(lambda: _core.andnot_matrix(bitsets))

    def numpy_matrix() -> np.ndarray:
        out = np.zeros((16, 16), dtype=np.int64)
        for i in range(16):
            for j in range(16):
                if i != j:
                    out[i, j] = (solved[i] & ~solved[j]).sum()
        return out

    t_numpy = peer_time(numpy_matrix, repeats=2)
    np.testing.assert_array_equal(ours, numpy_matrix())
    ratio = t_numpy / own_time(benchmark)
    benchmark.extra_info.update(numpy_s=t_numpy, ratio_vs_numpy=ratio, hw_popcount=bool(_core.has_hw_popcount()))
    assert ratio >= 10, f"only {ratio:.1f}x numpy"


def test_paired_bootstrap_math500(benchmark: Any) -> None:
    """10,000 paired resamples of MATH500, every k in 1..128, both models: target >= 20x numpy."""
    cov = Coverage.from_counts(MATH500)
    counts = {m: cov.counts(m) for m in cov.models}
    ks = np.arange(1, 129)

    def ours() -> PairedBootstrap:
        boot = PairedBootstrap(counts, resamples=10_000, seed=0)
        boot.prepare(cov.models, ks)
        return boot

    boot = benchmark(ours)
    matrices = [pk.pass_at_k(*counts[m], ks) for m in cov.models]  # precomputed: not timed for the peer
    t_numpy = peer_time(lambda: numpy_bootstrap(matrices, 10_000, seed=0), repeats=2)
    ref = numpy_bootstrap(matrices, 2000, seed=0)
    np.testing.assert_allclose(boot.curves("base", ks).std(axis=0), ref[0].std(axis=0), rtol=0.1)
    ratio = t_numpy / own_time(benchmark)
    benchmark.extra_info.update(numpy_s=t_numpy, ratio_vs_numpy=ratio)
    assert ratio >= 20, f"only {ratio:.1f}x numpy"
