"""The CPU scorer's worker threads: the same scores as one pack at a time, threads restored after."""

from __future__ import annotations

import numpy as np
import torch

from passkcore.models import resolve_model
from passkcore.scoring.cpu import SharedPrompt, cpu_packed_scores, plan_packs, score_pack, single_threaded_workers
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
    """n responses per prompt (the study's shape), interleaved with a unique prompt: each shared
    prompt computed once and its cache serving every pack of its responses (prompt 0's split over
    several packs): every row as scored alone."""
    decoder = PackedDecoder.load(resolve_model("smollm2-135m"))
    rng = np.random.default_rng(3)
    prompts = [rng.integers(100, 40000, n).tolist() for n in (12, 7, 30)]
    pairs = [(list(prompts[k]), rng.integers(100, 40000, n).tolist())
             for k, n in [(0, 5), (1, 9), (0, 14), (2, 3), (0, 1), (0, 22), (1, 4)]]
    planned = plan_packs(pairs, budget=25)
    assert sorted(i for _, pack in planned for i in pack) == list(range(len(pairs)))
    shared = [(s, pack) for s, pack in planned if s is not None]
    assert all({tuple(pairs[i][0]) for i in pack} == {tuple(s.prompt)} for s, pack in shared)
    assert all(sum(len(pairs[i][1]) for i in pack) <= 25 or len(pack) == 1 for _, pack in shared)
    assert [pack for s, pack in planned if s is None] == [[3]]  # the one unique prompt, whole
    assert len({id(s) for s, _ in shared}) == 2 and len(shared) > 2  # prompt 0's responses in several packs
    scored = cpu_packed_scores(decoder, pairs, [1.0, 0.3], budget=25)
    for k, temperature in enumerate([1.0, 0.3]):
        for pair, (logp, entropy) in zip(pairs, scored[k]):
            alone_logp, alone_entropy = score_pack(decoder, [pair], [temperature])[0][0]
            assert logp.shape == (len(pair[1]),) and entropy is not None
            # GEMMs of other heights sum in another order: measured up to 7.6e-5 on log-probs near -20
            assert np.all(np.abs(logp - alone_logp) <= 2e-5 + 1e-5 * np.abs(alone_logp))
            assert np.all(np.abs(entropy - alone_entropy) <= 2e-5 + 1e-5 * np.abs(alone_entropy))


def test_a_shared_prompt_is_computed_once_and_dropped_after_its_last_pack() -> None:
    calls: list[list[int]] = []

    class Counting:
        def prefix_cache(self, prompt: list[int]) -> str:
            calls.append(prompt)
            return "cache"

    shared = SharedPrompt([1, 2, 3], packs=2)
    assert shared.acquire(Counting()) == "cache" and shared.acquire(Counting()) == "cache"
    assert calls == [[1, 2, 3]]
    shared.release()
    assert shared.cache == "cache"
    shared.release()
    assert shared.cache is None
