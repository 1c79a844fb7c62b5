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

from passkcore.kernels import token_logprobs
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


def score_pack(decoder: Any, pairs: Sequence[Pair], temperatures: Sequence[float]) -> list[list[TokenScores]]:
    """Per temperature, each pair's (log-probs, entropies) of its response tokens."""
    with torch.inference_mode():
        hidden = decoder.hidden_states([list(p) + list(r) for p, r in pairs])
        # Position t predicts token t + 1: a response is predicted from positions len(p)-1 ...
        starts = np.cumsum([0, *(len(p) + len(r) for p, r in pairs)])[:-1]
        index = np.concatenate([np.arange(s + len(p) - 1, s + len(p) - 1 + len(r)) for s, (p, r) in zip(starts, pairs)])
        hidden = hidden[torch.from_numpy(index)]
        targets = torch.tensor([t for _, r in pairs for t in r], dtype=torch.long)
        bounds = np.cumsum([0, *(len(r) for _, r in pairs)])
        out = []
        for temperature in temperatures:
            logp, entropy = token_logprobs(hidden, decoder.head, targets, bias=decoder.head_bias,
                                           temperature=temperature, return_entropy=True)
            logp_np, ent_np = logp.numpy(), entropy.numpy()
            out.append([(logp_np[a:b], ent_np[a:b]) for a, b in zip(bounds[:-1], bounds[1:])])
    return out


def cpu_packed_scores(decoder: Any, pairs: Sequence[Pair], temperatures: Sequence[float], budget: int,
                      progress: Optional[Callable[[int], None]] = None) -> list[list[TokenScores]]:
    """``Scorer.token_scores_at`` on a CPU: packs of at most ``budget`` tokens, one per worker thread."""
    packs = pack_sequences([len(p) + len(r) for p, r in pairs], budget)
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
