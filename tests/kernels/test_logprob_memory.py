"""The CPU head's extra memory is one tile plus O(T) state: bounded whatever the vocabulary size."""

from __future__ import annotations

import passkcore.kernels.logprob_cpu as cpu
import torch
from passkcore.kernels import naive_token_logprobs, token_logprobs
from passkcore.kernels._memory import peak_extra_bytes


def test_peak_memory_bounded_in_vocabulary() -> None:
    g = torch.Generator().manual_seed(0)
    T = 1024
    hidden = torch.randn(T, 64, generator=g)
    targets = torch.randint(0, 8192, (T,), generator=g)
    weight = torch.randn(8192, 64, generator=g) * 0.1
    token_logprobs(hidden, weight, targets)  # compile first
    tile = T * cpu.VOCAB_CHUNK * 4
    # Allocator noise is a few MiB either way; the tile is 16 MiB; [T, V] logits would be 512 / 2048 MiB.
    for repeat in (16, 64):
        big_weight = weight.repeat(repeat, 1)
        peak = peak_extra_bytes(lambda w=big_weight: token_logprobs(hidden, w, targets))[0]
        assert peak <= tile + 24 * 2**20, f"V = {big_weight.shape[0]}: {peak / 2**20:.1f} MiB"
    naive = peak_extra_bytes(lambda: naive_token_logprobs(hidden, weight.repeat(16, 1), targets))[0]
    assert naive >= T * 8192 * 16 * 4  # the naive path holds at least the [T, V] fp32 logits
