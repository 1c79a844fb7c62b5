"""The packed CPU decoder computes the transformers model's hidden states, packed or alone."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from passkcore.models import load_causal_lm, resolve_model
from passkcore.scoring.decoder import PackedDecoder, read_tensors, supports, text_config


@pytest.fixture(scope="module")
def decoder() -> PackedDecoder:
    return PackedDecoder.load(resolve_model("smollm2-135m"))


def _sequences() -> list[list[int]]:
    rng = np.random.default_rng(1)
    return [rng.integers(100, 40000, n).tolist() for n in (37, 5, 90)]


def test_hidden_states_equal_transformers(decoder: PackedDecoder) -> None:
    model = load_causal_lm(resolve_model("smollm2-135m"), attn_implementation="eager")
    seqs = _sequences()
    with torch.inference_mode():
        ours = decoder.hidden_states(seqs)
        cuts = np.cumsum([0, *(len(s) for s in seqs)])
        for s, a, b in zip(seqs, cuts[:-1], cuts[1:]):
            theirs = model.model(input_ids=torch.tensor([s])).last_hidden_state[0]
            # fp32 sums in another order: measured up to 1.0e-4 on values up to 53
            assert float((ours[a:b] - theirs).abs().max()) <= 5e-4
            assert float(theirs.abs().max()) > 1.0  # not a trivially small comparison


def test_a_sequence_packed_equals_it_alone(decoder: PackedDecoder) -> None:
    seqs = _sequences()
    with torch.inference_mode():
        packed = decoder.hidden_states(seqs)
        alone = decoder.hidden_states([seqs[1]])
    # GEMMs of another height sum in another order: measured 1.6e-4 on values up to ~50
    assert float((packed[37:42] - alone).abs().max()) <= 5e-4


def test_continuations_share_their_prefix(decoder: PackedDecoder) -> None:
    """A prefix computed once for three continuations (one empty) gives each (prefix + continuation)
    the states it has alone; positions go on from the prefix's length."""
    rng = np.random.default_rng(4)
    prefix = rng.integers(100, 40000, 21).tolist()
    conts = [rng.integers(100, 40000, n).tolist() for n in (9, 0, 17)]
    with torch.inference_mode():
        cache = decoder.prefix_cache(prefix)
        states = decoder.continuation_states(cache, conts)
        assert states.shape[0] == 9 + 17
        alone = [decoder.hidden_states([prefix + c]) for c in conts]
        assert float((cache.last - alone[1][20]).abs().max()) <= 5e-4
        assert float((states[:9] - alone[0][21:]).abs().max()) <= 5e-4
        assert float((states[9:] - alone[2][21:]).abs().max()) <= 5e-4
        assert float((states[9:] - alone[0][21:30].mean()).abs().max()) > 1e-2  # not all alike


def test_continuations_of_a_cached_prefix(decoder: PackedDecoder) -> None:
    """prefix_cache + continuation_states: each continuation as (prefix + continuation) alone, and the
    cache's last state the prefix's own last state."""
    rng = np.random.default_rng(6)
    prefix = rng.integers(100, 40000, 15).tolist()
    conts = [rng.integers(100, 40000, n).tolist() for n in (4, 11)]
    with torch.inference_mode():
        cache = decoder.prefix_cache(prefix)
        states = decoder.continuation_states(cache, conts)
        assert states.shape[0] == 15 and cache.length == 15 and len(cache.keys) == len(decoder.layers)
        alone = [decoder.hidden_states([prefix + c]) for c in conts]
        assert float((cache.last - alone[0][14]).abs().max()) <= 5e-4
        assert float((states[:4] - alone[0][15:]).abs().max()) <= 5e-4
        assert float((states[4:] - alone[1][15:]).abs().max()) <= 5e-4


def test_prompts_cached_together_equal_each_alone(decoder: PackedDecoder) -> None:
    rng = np.random.default_rng(8)
    prompts = [rng.integers(100, 40000, n).tolist() for n in (13, 1, 30)]
    cont = rng.integers(100, 40000, 7).tolist()
    with torch.inference_mode():
        together = decoder.prefix_caches(prompts)
        for prompt, cache in zip(prompts, together):
            alone = decoder.prefix_cache(prompt)
            assert cache.length == len(prompt) and cache.keys[3].shape == alone.keys[3].shape
            assert float((cache.last - alone.last).abs().max()) <= 5e-4
            states = decoder.continuation_states(cache, [cont])
            assert float((states - decoder.continuation_states(alone, [cont])).abs().max()) <= 5e-4


def test_long_spans_attend_in_blocks_as_one(decoder: PackedDecoder) -> None:
    """Spans of 130 and 300 tokens (2 and 4 query blocks), alone and after a cached prefix: the
    transformers model's states."""
    model = load_causal_lm(resolve_model("smollm2-135m"), attn_implementation="eager")
    rng = np.random.default_rng(9)
    prefix = rng.integers(100, 40000, 40).tolist()
    conts = [rng.integers(100, 40000, n).tolist() for n in (300, 130)]
    with torch.inference_mode():
        plain = decoder.hidden_states(conts)
        states = decoder.continuation_states(decoder.prefix_cache(prefix), conts)
        for a, b, c in ((0, 300, conts[0]), (300, 430, conts[1])):
            theirs = model.model(input_ids=torch.tensor([c])).last_hidden_state[0]
            assert float((plain[a:b] - theirs).abs().max()) <= 5e-4
            theirs = model.model(input_ids=torch.tensor([prefix + c])).last_hidden_state[0, 40:]
            assert float((states[a:b] - theirs).abs().max()) <= 5e-4


def test_supports_names_what_it_lacks() -> None:
    config = text_config(resolve_model("smollm2-135m"))
    assert supports(config) is None
    assert "model_type" in str(supports({**config, "model_type": "gpt2"}))
    assert "rope" in str(supports({**config, "rope_parameters": {"rope_type": "yarn"}}))
    assert "sliding window" in str(supports({**config, "model_type": "mistral", "sliding_window": 4096}))
    assert "hidden_act" in str(supports({**config, "hidden_act": "gelu"}))


def test_weights_read_without_mapping(tmp_path: Any) -> None:
    from safetensors.torch import save_file

    tensors = {"a": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.ones(4, dtype=torch.bfloat16)}
    save_file(tensors, str(tmp_path / "model.safetensors"))
    got = read_tensors(tmp_path, torch.float32)
    assert torch.equal(got["a"], tensors["a"]) and torch.equal(got["b"], torch.ones(4))
    assert got["b"].dtype == torch.float32
