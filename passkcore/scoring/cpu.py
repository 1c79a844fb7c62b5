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


def prompt_units(pairs: Sequence[Pair], budget: int) -> list[list[int]]:
    """Pairs sharing a prompt in units of at most ``budget`` tokens, the prompt counted once (a pair
    longer than the budget is a unit of its own): what a pack can hold with its prompt computed once."""
    units: list[list[int]] = []
    for group in by_prompt(pairs):
        lp = len(pairs[group[0]][0])
        unit: list[int] = []
        used = lp
        for i in sorted(group, key=lambda i: -len(pairs[i][1])):
            if unit and used + len(pairs[i][1]) > budget:
                units.append(unit)
                unit, used = [], lp
            unit.append(i)
            used += len(pairs[i][1])
        units.append(unit)
    return units


def score_pack(decoder: Any, pairs: Sequence[Pair], temperatures: Sequence[float]) -> list[list[TokenScores]]:
    """Per temperature, each pair's (log-probs, entropies) of its response tokens; pairs sharing a
    prompt share its forward (``PackedDecoder.grouped_hidden_states``)."""
    groups = by_prompt(pairs)
    order = [i for g in groups for i in g]
    index = []
    start = 0
    for g in groups:
        lp, sizes = len(pairs[g[0]][0]), [len(pairs[i][1]) for i in g]
        if len(g) == 1:  # one sequence: position t predicts token t + 1, the response from lp - 1 on
            index.append(np.arange(start + lp - 1, start + lp - 1 + sizes[0]))
        else:  # the prompt's last position predicts every first response token; then each its own
            a = start + lp
            for n in sizes:
                index.append(np.concatenate([[start + lp - 1], np.arange(a, a + n - 1)]))
                a += n
        start += lp + sum(sizes)
    with torch.inference_mode():
        hidden = decoder.grouped_hidden_states([(pairs[g[0]][0], [pairs[i][1] for i in g]) for g in groups])
        hidden = hidden[torch.from_numpy(np.concatenate(index))]
        targets = torch.tensor([t for i in order for t in pairs[i][1]], dtype=torch.long)
        bounds = np.cumsum([0, *(len(pairs[i][1]) for i in order)])
        scored = token_logprobs_at(hidden, decoder.head, targets, temperatures, bias=decoder.head_bias,
                                   return_entropy=True)
    out = []
    for logp, entropy in scored:
        assert entropy is not None
        logp_np, ent_np = logp.numpy(), entropy.numpy()
        row: list[Optional[TokenScores]] = [None] * len(pairs)
        for j, i in enumerate(order):
            row[i] = (logp_np[bounds[j]:bounds[j + 1]], ent_np[bounds[j]:bounds[j + 1]])
        out.append([r for r in row if r is not None])
    return out


def cpu_packed_scores(decoder: Any, pairs: Sequence[Pair], temperatures: Sequence[float], budget: int,
                      progress: Optional[Callable[[int], None]] = None) -> list[list[TokenScores]]:
    """``Scorer.token_scores_at`` on a CPU: packs of at most ``budget`` tokens (a shared prompt counted
    once), one per worker thread."""
    units = prompt_units(pairs, budget)
    costs = [len(pairs[u[0]][0]) + sum(len(pairs[i][1]) for i in u) for u in units]
    packs = [[i for k in pack for i in units[k]] for pack in pack_sequences(costs, budget)]
    out: list[Optional[list[TokenScores]]] = [None] * len(pairs)

    def run(pack: list[int]) -> list[int]:
        scored = score_pack(decoder, [pairs[i] for i in pack], temperatures)
        for j, i in enumerate(pack):
            out[i] = [per_t[j] for per_t in scored]
        return pack

    with single_threaded_workers() as workers:
        if workers == 1:
            done: Iterator[list[int]] = map(run, packs)
            _drain(done, pairs, progress)
        else:
            with ThreadPoolExecutor(workers) as pool:
                _drain(pool.map(run, packs), pairs, progress)
    missing = [i for i, o in enumerate(out) if o is None]
    if missing:  # every pack either fills its rows or raises: a gap would misalign the results
        raise RuntimeError(f"rows {missing[:5]} were not scored")
    return [[row[k] for row in out if row is not None] for k in range(len(temperatures))]


def _drain(done: Iterator[list[int]], pairs: Sequence[Pair], progress: Optional[Callable[[int], None]]) -> None:
    for pack in done:  # on the calling thread: progress bars and malloc_trim stay off the workers
        release_free_memory()  # packs differ in shape: without it the heap grows each pack
        if progress:
            progress(sum(len(pairs[i][1]) for i in pack))
