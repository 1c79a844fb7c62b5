"""The CPU scorer's worker threads: the same scores as one pack at a time, threads restored after."""

from __future__ import annotations

import heapq

import numpy as np
import pytest
import torch

import passkcore.scoring.cpu as cpu
from passkcore.models import resolve_model
from passkcore.scoring.cpu import balanced_packs, cpu_packed_scores, plan_rounds, score_pack, single_threaded_workers
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
    rounds = plan_rounds(pairs, budget=25, workers=2)
    assert sorted(i for r in rounds for _, pack in r.packs for i in pack) == list(range(len(pairs)))
    # Prompts 0 and 1 (19 tokens) fit one round's 2 x 25; the unique prompt's pair comes last, whole.
    assert [r.prompts for r in rounds] == [[prompts[0], prompts[1]], []] and rounds[1].packs == [(-1, [3])]
    shared = rounds[0]
    assert all(pairs[i][0] == shared.prompts[k] for k, pack in shared.packs for i in pack)
    assert all(sum(len(pairs[i][1]) for i in pack) <= 25 or len(pack) == 1 for _, pack in shared.packs)
    sizes = [sum(len(pairs[i][1]) for i in pack) for _, pack in shared.packs]
    assert sizes == sorted(sizes, reverse=True) and len(shared.packs) == 3  # prompt 0: 22 | 14 + 5 + 1; prompt 1: 13
    # A round holds at most workers x budget prompt tokens: at budget 16, prompts of 12 and 7 go apart.
    assert [r.prompts for r in plan_rounds(pairs, budget=16, workers=1)][:2] == [[prompts[0]], [prompts[1]]]
    scored = cpu_packed_scores(decoder, pairs, [1.0, 0.3], budget=25)
    for k, temperature in enumerate([1.0, 0.3]):
        for pair, (logp, entropy) in zip(pairs, scored[k]):
            alone_logp, alone_entropy = score_pack(decoder, [pair], [temperature])[0][0]
            assert logp.shape == (len(pair[1]),) and entropy is not None
            # GEMMs of other heights sum in another order: measured up to 7.6e-5 on log-probs near -20
            assert np.all(np.abs(logp - alone_logp) <= 2e-5 + 1e-5 * np.abs(alone_logp))
            assert np.all(np.abs(entropy - alone_entropy) <= 2e-5 + 1e-5 * np.abs(alone_entropy))


def test_balanced_packs_even_out_and_keep_the_budget() -> None:
    lengths = [int(x) for x in np.linspace(160, 480, 16)]
    packs = balanced_packs(lengths, 1024, 2)
    assert sorted(i for p in packs for i in p) == list(range(16))
    sizes = [sum(lengths[i] for i in p) for p in packs]
    assert len(packs) == 6 and max(sizes) <= 1024  # 5,115 tokens: 5 packs' worth, rounded up to 2 workers
    assert sizes == sorted(sizes, reverse=True)  # largest first
    assert max(sizes) - min(sizes) < max(lengths)  # within one response of each other
    assert balanced_packs([5000, 10, 20], 1024, 2) == [[0], [2], [1]]  # over the budget: a pack of its own
    assert balanced_packs([10, 20], 1024, 4) == [[1], [0]]  # never more packs than rows
    assert balanced_packs([], 1024, 2) == []
    # The even split into 2 packs would be (1,000, 800) with 1,000 over the budget of 900: 4 packs then.
    assert balanced_packs([700, 400, 400, 300], 900, 2) == [[0], [1], [2], [3]]


def test_each_shared_prompt_is_computed_once() -> None:
    decoder = PackedDecoder.load(resolve_model("smollm2-135m"))
    calls: list[list[int]] = []
    original = decoder.prefix_caches

    def counting(prompts: list[list[int]]) -> list[object]:
        calls.extend(list(p) for p in prompts)
        return original(prompts)

    decoder.prefix_caches = counting  # type: ignore[method-assign]
    pairs = [([5, 6, 7], [8] * n) for n in (40, 30, 20, 10)] + [([9, 10], [11, 12])]
    threads = torch.get_num_threads()
    scored = cpu_packed_scores(decoder, pairs, [1.0], budget=32)
    assert calls == [[5, 6, 7]] and [len(logp) for logp, _ in scored[0]] == [40, 30, 20, 10, 2]
    assert torch.get_num_threads() == threads  # every thread again after the prompts' and the workers' turns


def test_balanced_packs_of_many_rows_plan_in_a_few_tries(monkeypatch: pytest.MonkeyPatch) -> None:
    """20,000 rows of 60% of the budget (no two fit a pack): each its own pack, in a few tries of the
    even split (one try per added pack would be 8,000 tries)."""
    pops = 0
    heappop = heapq.heappop

    def counting(heap: list[tuple[int, int]]) -> tuple[int, int]:
        nonlocal pops
        pops += 1
        return heappop(heap)

    monkeypatch.setattr(cpu.heapq, "heappop", counting)
    packs = balanced_packs([600] * 20_000, 1000, 2)
    assert sorted(len(p) for p in packs) == [1] * 20_000
    assert pops // 20_000 <= 6
