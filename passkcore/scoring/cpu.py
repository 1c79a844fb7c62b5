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

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Optional

import numpy as np

from passkcore.extras import needs_extra

with needs_extra("sampling", by=__name__):
    import torch

from passkcore.kernels import token_logprobs_at
from passkcore.memory import release_free_memory
from passkcore.varlen import pack_sequences

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
    sequence (``plan_packs`` sends pairs that share a prompt to ``score_responses``)."""
    starts = np.cumsum([0, *(len(p) + len(r) for p, r in pairs)])[:-1]
    # Position t predicts token t + 1: a response is predicted from positions len(p)-1 ...
    index = np.concatenate([np.arange(s + len(p) - 1, s + len(p) - 1 + len(r)) for s, (p, r) in zip(starts, pairs)])
    with torch.inference_mode():
        hidden = decoder.hidden_states([list(p) + list(r) for p, r in pairs])
        return head_scores(decoder, hidden[torch.from_numpy(index)], [r for _, r in pairs], temperatures)


class SharedPrompt:
    """One prompt's cached forward (``PackedDecoder.prefix_cache``) for the packs of its responses: the
    first pack to need it computes it, the others wait; the last to finish drops it, so a run holds the
    caches of the prompts being scored, not of every prompt it has seen."""

    def __init__(self, prompt: Sequence[int], packs: int) -> None:
        self.prompt, self.left = prompt, packs
        self.cache: Any = None
        self.lock = threading.Lock()

    def acquire(self, decoder: Any) -> Any:
        with self.lock:  # a second pack waits here while the first computes the prompt
            if self.cache is None:
                with torch.inference_mode():
                    self.cache = decoder.prefix_cache(self.prompt)
            return self.cache

    def release(self) -> None:
        with self.lock:
            self.left -= 1
            if self.left == 0:
                self.cache = None


def score_responses(decoder: Any, shared: SharedPrompt, responses: Sequence[Sequence[int]],
                    temperatures: Sequence[float]) -> list[list[TokenScores]]:
    """``score_pack`` of responses to one shared prompt, the prompt's forward taken from its cache."""
    cache = shared.acquire(decoder)
    try:
        with torch.inference_mode():
            hidden = decoder.continuation_states(cache, responses)
            # Row 0: the prompt's last position (predicts every first token); then the responses'.
            rows, start = [], 1
            for r in responses:
                rows.append(np.concatenate([[0], np.arange(start, start + len(r) - 1)])[:len(r)])
                start += len(r)
            hidden = torch.cat([cache.last[None], hidden])[torch.from_numpy(np.concatenate(rows))]
            return head_scores(decoder, hidden, responses, temperatures)
    finally:
        shared.release()


def plan_packs(pairs: Sequence[Pair], budget: int) -> list[tuple[Optional[SharedPrompt], list[int]]]:
    """The packs of a call, in order: the responses to a prompt that two or more pairs share, in packs
    of at most ``budget`` response tokens with that prompt's ``SharedPrompt``; then the other pairs,
    packed whole (prompt + response) as before."""
    planned: list[tuple[Optional[SharedPrompt], list[int]]] = []
    alone: list[int] = []
    for group in by_prompt(pairs):
        if len(group) == 1:
            alone.append(group[0])
            continue
        packs = [[group[k] for k in p] for p in pack_sequences([len(pairs[i][1]) for i in group], budget)]
        shared = SharedPrompt(pairs[group[0]][0], len(packs))
        planned.extend((shared, p) for p in packs)
    for p in pack_sequences([len(pairs[i][0]) + len(pairs[i][1]) for i in alone], budget):
        planned.append((None, [alone[k] for k in p]))
    return planned


def cpu_packed_scores(decoder: Any, pairs: Sequence[Pair], temperatures: Sequence[float], budget: int,
                      progress: Optional[Callable[[int], None]] = None) -> list[list[TokenScores]]:
    """``Scorer.token_scores_at`` on a CPU: packs of at most ``budget`` tokens, one per worker thread.

    A prompt that several pairs share (a study's n responses per problem) is computed once and its
    keys and values serve every pack of its responses (``plan_packs``): vLLM cannot do this for
    prompt log-probs (a request with prompt_logprobs skips its prefix cache)."""
    out: list[Optional[list[TokenScores]]] = [None] * len(pairs)

    def run(task: tuple[Optional[SharedPrompt], list[int]]) -> list[int]:
        shared, pack = task
        if shared is None:
            scored = score_pack(decoder, [pairs[i] for i in pack], temperatures)
        else:
            scored = score_responses(decoder, shared, [pairs[i][1] for i in pack], temperatures)
        for j, i in enumerate(pack):
            out[i] = [per_t[j] for per_t in scored]
        return pack

    tasks = plan_packs(pairs, budget)
    with single_threaded_workers() as workers:
        if workers == 1:
            done: Iterator[list[int]] = map(run, tasks)
            _drain(done, pairs, progress)
        else:
            with ThreadPoolExecutor(workers) as pool:
                _drain(pool.map(run, tasks), pairs, progress)
    missing = [i for i, o in enumerate(out) if o is None]
    if missing:  # every pack either fills its rows or raises: a gap would misalign the results
        raise RuntimeError(f"rows {missing[:5]} were not scored")
    return [[row[k] for row in out if row is not None] for k in range(len(temperatures))]


def _drain(done: Iterator[list[int]], pairs: Sequence[Pair], progress: Optional[Callable[[int], None]]) -> None:
    for pack in done:  # on the calling thread: progress bars and malloc_trim stay off the workers
        release_free_memory()  # packs differ in shape: without it the heap grows each pack
        if progress:
            progress(sum(len(pairs[i][1]) for i in pack))
