"""Packed variable-length forwards: same hidden states as each sequence alone, packs within budget."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from passkcore.models import load_causal_lm
from passkcore.varlen import (
    attention_flash_varlen,
    attention_per_sequence,
    flash_varlen_usable,
    pack_sequences,
    packed_hidden_states,
    register,
)


def test_pack_sequences_covers_every_row_within_budget() -> None:
    rng = np.random.default_rng(0)
    lengths = [int(x) for x in rng.integers(1, 900, 500)]
    packs = pack_sequences(lengths, 2048)
    assert sorted(i for p in packs for i in p) == list(range(500))
    assert all(sum(lengths[i] for i in p) <= 2048 for p in packs if len(p) > 1)
    assert pack_sequences([5000, 10], 2048) == [[0], [1]]  # a row over the budget still gets scored


@pytest.mark.slow
def test_packed_equals_each_sequence_alone() -> None:
    model = load_causal_lm("smollm2-135m", attn_implementation=register())
    reference = load_causal_lm("smollm2-135m", attn_implementation="sdpa")
    rng = np.random.default_rng(1)
    seqs = [rng.integers(100, 40000, int(n)).tolist() for n in (7, 60, 1, 33)]
    with torch.inference_mode():
        packed = packed_hidden_states(model.get_decoder(), seqs, "cpu")
        alone = [reference.get_decoder()(input_ids=torch.tensor([s])).last_hidden_state[0] for s in seqs]
    assert packed.shape == (sum(map(len, seqs)), model.config.hidden_size)
    worst = float((packed - torch.cat(alone)).abs().max())
    assert worst <= 1e-4, worst


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_flash_varlen_equals_per_sequence_attention(dtype: torch.dtype) -> None:
    g = torch.Generator(device="cuda").manual_seed(0)
    lengths = [1, 7, 300, 64, 129]
    n = sum(lengths)
    query = torch.randn(1, 9, n, 64, device="cuda", generator=g).to(dtype)
    key, value = (torch.randn(1, 3, n, 64, device="cuda", generator=g).to(dtype) for _ in range(2))
    bounds = torch.tensor(np.cumsum([0, *lengths]), dtype=torch.int32, device="cuda")
    assert flash_varlen_usable(query)  # the torch on a CUDA machine has the kernel (2.9 and later)
    ours = attention_flash_varlen(query, key, value, bounds, 0.125)
    loop = attention_per_sequence(query, key, value, bounds, 0.125)
    fp32 = attention_per_sequence(query.float(), key.float(), value.float(), bounds, 0.125)
    assert ours.shape == loop.shape == (1, n, 9, 64)
    # no worse than the per-sequence SDPA calls against fp32, plus one rounding of the output dtype
    assert (ours.float() - fp32).abs().max() <= (loop.float() - fp32).abs().max() + 2e-3
