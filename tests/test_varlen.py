"""Packed variable-length forwards: same hidden states as each sequence alone, packs within budget."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from passkcore.models import load_causal_lm
from passkcore.varlen import pack_sequences, packed_hidden_states, register


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
