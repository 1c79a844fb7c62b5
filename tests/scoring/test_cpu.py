"""The CPU scorer's worker threads: the same scores as one pack at a time, threads restored after."""

from __future__ import annotations

import numpy as np
import torch

from passkcore.models import resolve_model
from passkcore.scoring.cpu import cpu_packed_scores, prompt_units, score_pack, single_threaded_workers
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


def test_shared_prompts_score_as_alone() -> None:
    """n responses per prompt (the study's shape), interleaved with a unique prompt, a group larger
    than the budget split in units that each carry the prompt: every row as scored alone."""
    decoder = PackedDecoder.load(resolve_model("smollm2-135m"))
    rng = np.random.default_rng(3)
    prompts = [rng.integers(100, 40000, n).tolist() for n in (12, 7, 30)]
    pairs = [(list(prompts[k]), rng.integers(100, 40000, n).tolist())
             for k, n in [(0, 5), (1, 9), (0, 14), (2, 3), (0, 1), (0, 22), (1, 4)]]
    units = prompt_units(pairs, budget=40)
    assert sorted(i for u in units for i in u) == list(range(len(pairs)))
    assert all(len({tuple(pairs[i][0]) for i in u}) == 1 for u in units)
    assert all(len(pairs[u[0]][0]) + sum(len(pairs[i][1]) for i in u) <= 40 or len(u) == 1 for u in units)
    assert any(len(u) > 1 for u in units)
    scored = cpu_packed_scores(decoder, pairs, [1.0, 0.3], budget=40)
    for k, temperature in enumerate([1.0, 0.3]):
        for pair, (logp, entropy) in zip(pairs, scored[k]):
            alone_logp, alone_entropy = score_pack(decoder, [pair], [temperature])[0][0]
            assert logp.shape == (len(pair[1]),) and entropy is not None
            # GEMMs of other heights sum in another order: measured up to 7.6e-5 on log-probs near -20
            assert np.all(np.abs(logp - alone_logp) <= 2e-5 + 1e-5 * np.abs(alone_logp))
            assert np.all(np.abs(entropy - alone_entropy) <= 2e-5 + 1e-5 * np.abs(alone_entropy))
