"""The CPU head's extra memory is one tile plus O(T) state: flat in the vocabulary size."""

from __future__ import annotations

import torch

from passkcore.kernels import naive_token_logprobs, token_logprobs
from passkcore.kernels._memory import peak_extra_bytes


def test_peak_memory_flat_in_vocabulary() -> None:
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(1024, 64, generator=g)
    targets = torch.randint(0, 8192, (1024,), generator=g)
    weight = torch.randn(8192, 64, generator=g) * 0.1
    token_logprobs(hidden, weight, targets)  # compile first
    small = peak_extra_bytes(lambda: token_logprobs(hidden, weight, targets))[0]
    big_weight = weight.repeat(16, 1)  # V = 131072
    big = peak_extra_bytes(lambda: token_logprobs(hidden, big_weight, targets))[0]
    naive = peak_extra_bytes(lambda: naive_token_logprobs(hidden, big_weight, targets))[0]
    assert big <= small + 8 * 2**20, f"{small / 2**20:.1f} MiB -> {big / 2**20:.1f} MiB"
    assert naive >= 1024 * 131072 * 4  # the naive path holds at least the [T, V] fp32 logits
    assert big < naive / 10
