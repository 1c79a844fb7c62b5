"""The default scorer on a CPU: packed sequences through ``passkcore.scoring.decoder``, one pack per
worker thread, the fused head on each pack's response tokens.

Why a pack per thread, each thread's torch single-threaded (rather than every op on all cores): on a
shared 2-core machine each multi-threaded op ends at a barrier that waits for its slowest,
descheduled thread, and a layer is a dozen ops; independent workers never wait for each other (the
same layout as the CPU head, ``kernels/logprob_cpu.py``). torch releases the GIL inside its ops, so
two workers run two packs at once. Where ``torch.set_num_threads`` cannot go to 1 (a vLLM engine in
the same process makes it a no-op: ``passkcore.sampling.engine_layout``) one worker runs the packs.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from passkcore.extras import needs_extra

with needs_extra("sampling", by=__name__):
    import torch

from passkcore.kernels import token_logprobs_at
from passkcore.memory import release_free_memory

Pair = tuple[Sequence[int], Sequence[int]]
TokenScores = tuple[np.ndarray, Optional[np.ndarray]]


@contextmanager
def single_threaded_workers() -> Iterator[int]:
    """Yields how many worker threads to run, each with single-threaded torch ops; restores the
    thread count after."""
    threads = torch.get_num_threads()
    if threads <= 1:
        yield 1
        return
    torch.set_num_threads(1)
    try:
        yield threads if torch.get_num_threads() == 1 else 1
    finally:
        torch.set_num_threads(threads)


def by_prompt(pairs: Sequence[Pair]) -> list[list[int]]:
    """Indices of the pairs grouped by identical prompt, groups in order of first appearance."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, (prompt, _) in enumerate(pairs):
        groups.setdefault(tuple(prompt), []).append(i)
    return list(groups.values())


def head_scores(decoder: Any, hidden: torch.Tensor, responses: Sequence[Sequence[int]],
                temperatures: Sequence[float]) -> list[list[TokenScores]]:
    """Per temperature, each response's (log-probs, entropies) from the hidden states [tokens, H] that
    predict its tokens, the responses' rows concatenated in order."""
    targets = torch.tensor([t for r in responses for t in r], dtype=torch.long)
    bounds = np.cumsum([0, *(len(r) for r in responses)])
    scored = token_logprobs_at(hidden, decoder.head, targets, temperatures, bias=decoder.head_bias,
                               return_entropy=True)
    out = []
    for logp, entropy in scored:
        assert entropy is not None
        logp_np, ent_np = logp.numpy(), entropy.numpy()
        out.append([(logp_np[a:b], ent_np[a:b]) for a, b in zip(bounds[:-1], bounds[1:])])
    return out


def score_pack(decoder: Any, pairs: Sequence[Pair], temperatures: Sequence[float]) -> list[list[TokenScores]]:
    """Per temperature, each pair's (log-probs, entropies) of its response tokens, every pair its own
    sequence (``plan_rounds`` sends pairs that share a prompt to ``score_responses``)."""
    starts = np.cumsum([0, *(len(p) + len(r) for p, r in pairs)])[:-1]
    # Position t predicts token t + 1: a response is predicted from positions len(p)-1 ...
    index = np.concatenate([np.arange(s + len(p) - 1, s + len(p) - 1 + len(r)) for s, (p, r) in zip(starts, pairs)])
    with torch.inference_mode():
        hidden = decoder.hidden_states([list(p) + list(r) for p, r in pairs])
        return head_scores(decoder, hidden[torch.from_numpy(index)], [r for _, r in pairs], temperatures)


def score_responses(decoder: Any, cache: Any, responses: Sequence[Sequence[int]],
                    temperatures: Sequence[float]) -> list[list[TokenScores]]:
    """``score_pack`` of responses to one prompt, the prompt's forward taken from its ``cache``
    (``PackedDecoder.prefix_cache``)."""
    with torch.inference_mode():
        hidden = decoder.continuation_states(cache, responses)
        # Row 0: the prompt's last position (predicts every first token); then the responses'.
        rows, start = [], 1
        for r in responses:
            rows.append(np.concatenate([[0], np.arange(start, start + len(r) - 1)])[:len(r)])
            start += len(r)
        hidden = torch.cat([cache.last[None], hidden])[torch.from_numpy(np.concatenate(rows))]
        return head_scores(decoder, hidden, responses, temperatures)


def balanced_packs(lengths: Sequence[int], budget: int, workers: int) -> list[list[int]]:
    """Indices in packs of near-equal total length, each within ``budget`` where it can be (a length
    over the budget gets a pack of its own): as few packs as the budget allows, rounded up to a
    multiple of ``workers`` so that every worker ends a call together; the longest first into the
    lightest pack.

    Why even packs rather than full ones: a call ends when its slowest worker does. The issue-42 study
    rows (16 responses, 5,120 tokens) in budget-full packs of 938, 853, 767, 991, 1,023 and 543 tokens
    left one of 2 workers idle for the last ~250 ms of 7.2 s."""
    if not lengths:
        return []
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    n = min(len(lengths), -(-math.ceil(sum(lengths) / budget) // workers) * workers)
    while True:
        heap = [(0, k) for k in range(n)]
        packs: list[list[int]] = [[] for _ in range(n)]
        for i in order:
            used, k = heapq.heappop(heap)
            packs[k].append(i)
            heapq.heappush(heap, (used + lengths[i], k))
        if n == len(lengths) or all(len(p) == 1 or sum(lengths[i] for i in p) <= budget for p in packs):
            # Largest first: workers that take the next pack when free then end within a pack's spread
            # (906-948 and 725-tokens packs above end 2,558 and 2,557 tokens in).
            packs.sort(key=lambda p: -sum(lengths[i] for i in p))
            return [sorted(p) for p in packs if p]
        # Too few packs to keep the budget: a quarter more (at least a pack per worker), so that a call of
        # many rows plans in a few tries, not one per added pack.
        n = min(len(lengths), n + max(workers, -(-n // 4 // workers) * workers))


@dataclass
class Round:
    """Scoring work done together: the shared ``prompts`` are computed first and their caches held
    while the ``packs`` run, each pack (prompt index or -1 for whole pairs, row indices) on a worker."""

    prompts: list[Sequence[int]] = field(default_factory=list)
    packs: list[tuple[int, list[int]]] = field(default_factory=list)


def plan_rounds(pairs: Sequence[Pair], budget: int, workers: int = 1) -> list[Round]:
    """The rounds of a call, in order. Prompts that two or more pairs share go to a round in order of
    first appearance until the round's prompt tokens would pass ``workers * budget`` (which bounds the
    caches held at once); each prompt's responses in ``balanced_packs`` by response tokens. Then the
    other pairs, packed whole (prompt + response), in a round of their own. A round's packs run
    largest first."""
    rounds: list[Round] = []
    groups: list[list[int]] = []
    alone: list[int] = []
    held = 0  # prompt tokens of the round being planned
    for group in by_prompt(pairs):
        if len(group) == 1:
            alone.append(group[0])
            continue
        if groups and held + len(pairs[group[0]][0]) > workers * budget:
            rounds.append(_shared_round(pairs, groups, budget, workers))
            groups, held = [], 0
        groups.append(group)
        held += len(pairs[group[0]][0])
    if groups:
        rounds.append(_shared_round(pairs, groups, budget, workers))
    if alone:
        packs = balanced_packs([len(pairs[i][0]) + len(pairs[i][1]) for i in alone], budget, workers)
        rounds.append(Round([], [(-1, [alone[k] for k in p]) for p in packs]))
    return rounds


def _shared_round(pairs: Sequence[Pair], groups: list[list[int]], budget: int, workers: int) -> Round:
    """A round of shared prompts: each group's responses in the fewest even packs within the budget
    (a round of one group: a multiple of the workers, so that they end together), largest first."""
    per_group = workers if len(groups) == 1 else 1
    packs = [(k, [group[j] for j in p]) for k, group in enumerate(groups)
             for p in balanced_packs([len(pairs[i][1]) for i in group], budget, per_group)]
    packs.sort(key=lambda kp: -sum(len(pairs[i][1]) for i in kp[1]))
    return Round([pairs[g[0]][0] for g in groups], packs)


def cpu_packed_scores(decoder: Any, pairs: Sequence[Pair], temperatures: Sequence[float], budget: int,
                      progress: Optional[Callable[[int], None]] = None) -> list[list[TokenScores]]:
    """``Scorer.token_scores_at`` on a CPU: packs of at most ``budget`` tokens, one per worker thread.

    A prompt that several pairs share (a study's n responses per problem) is computed once and its
    keys and values serve every pack of its responses (``plan_rounds``): vLLM cannot do this for prompt
    log-probs (a request with prompt_logprobs skips its prefix cache). A round's prompts are computed
    before its packs start, so that no worker waits idle while another computes a prompt: computed
    lazily by the first pack that needed it, a prompt left the other of 2 workers idle for 230 ms of
    the issue-42 study rows' 7.2 s."""
    out: list[Optional[list[TokenScores]]] = [None] * len(pairs)
    with single_threaded_workers() as workers, ThreadPoolExecutor(workers) as pool:
        mapped = pool.map if workers > 1 else map
        for round_ in plan_rounds(pairs, budget, workers):
            caches = _prefix_caches(decoder, round_.prompts, budget, workers, mapped)

            def run(task: tuple[int, list[int]], caches: list[Any] = caches) -> list[list[TokenScores]]:
                k, pack = task
                if k < 0:
                    return score_pack(decoder, [pairs[i] for i in pack], temperatures)
                return score_responses(decoder, caches[k], [pairs[i][1] for i in pack], temperatures)

            # Results are collected on the calling thread: progress bars and malloc_trim stay off the workers.
            for (_, pack), scored in zip(round_.packs, mapped(run, round_.packs)):
                for j, i in enumerate(pack):
                    out[i] = [per_t[j] for per_t in scored]
                release_free_memory()  # packs differ in shape: without it the heap grows each pack
                if progress:
                    progress(sum(len(pairs[i][1]) for i in pack))
            del caches
    missing = [i for i, o in enumerate(out) if o is None]
    if missing:  # every pack either fills its rows or raises: a gap would misalign the results
        raise RuntimeError(f"rows {missing[:5]} were not scored")
    return [[row[k] for row in out if row is not None] for k in range(len(temperatures))]


def _prefix_caches(decoder: Any, prompts: list[Sequence[int]], budget: int, workers: int,
                   mapped: Callable[..., Iterator[Any]]) -> list[Any]:
    """The prompts' caches (``PackedDecoder.prefix_caches``): in even packs on the workers when there
    are enough of them to go round, else in one pack on every thread at once (the workers' own; none
    of them runs meanwhile). The 16 prompts of a demo item (256 rows, 89 tokens a prompt) took 1.0 s
    in 2 packs on 2 workers, 2.3 s one at a time on 2 threads."""
    packs = balanced_packs([len(p) for p in prompts], budget, workers)
    if len(packs) < workers:
        return _on_every_thread(decoder, prompts, workers)
    caches: list[Any] = [None] * len(prompts)

    def run(pack: list[int]) -> list[Any]:
        with torch.inference_mode():
            return decoder.prefix_caches([prompts[i] for i in pack])

    for pack, computed in zip(packs, mapped(run, packs)):
        for i, cache in zip(pack, computed):
            caches[i] = cache
    return caches


def _on_every_thread(decoder: Any, prompts: list[Sequence[int]], threads: int) -> list[Any]:
    """``decoder.prefix_caches(prompts)`` with torch on ``threads`` threads; back to single-threaded after."""
    if not prompts:
        return []
    if threads > 1:
        torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            return decoder.prefix_caches(prompts)
    finally:
        if threads > 1:
            torch.set_num_threads(1)
