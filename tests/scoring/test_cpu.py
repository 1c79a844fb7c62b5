"""The CPU scorer's worker threads: the same scores as one pack at a time, threads restored after."""

from __future__ import annotations

import numpy as np
import torch

from passkcore.models import resolve_model
from passkcore.scoring.cpu import cpu_packed_scores, score_pack, single_threaded_workers
from passkcore.scoring.decoder import PackedDecoder


def test_workers_restore_the_thread_count() -> None:
    before = torch.get_num_threads()
    with single_threaded_workers() as workers:
        assert workers == max(1, before) and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_threaded_packs_equal_one_pack_at_a_time() -> None:
    decoder = PackedDecoder.load(resolve_model("smollm2-135m"))
    rng = np.random.default_rng(2)
    pairs = [(rng.integers(100, 40000, 8).tolist(), rng.integers(100, 40000, n).tolist()) for n in (30, 3, 50, 12, 20)]
    seen: list[int] = []
    threaded = cpu_packed_scores(decoder, pairs, [1.0, 0.5], budget=64, progress=seen.append)
    assert sum(seen) == sum(len(r) for _, r in pairs)
    for k, temperature in enumerate([1.0, 0.5]):
        for pair, (logp, entropy) in zip(pairs, threaded[k]):
            alone_logp, alone_entropy = score_pack(decoder, [pair], [temperature])[0][0]
            assert logp.shape == (len(pair[1]),) and entropy is not None
            assert float(np.abs(logp - alone_logp).max()) <= 5e-5
            assert float(np.abs(entropy - alone_entropy).max()) <= 5e-5
    assert float(np.abs(threaded[0][0][0] - threaded[1][0][0]).max()) > 1e-3  # temperatures differ
