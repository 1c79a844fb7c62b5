"""Both backends of token_logprobs against an fp64 ground truth: no worse than PyTorch's own path."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from passkcore.kernels import chunked_token_logprobs, naive_token_logprobs, token_logprobs, token_logprobs_at
from passkcore.kernels.logprob_triton import token_logprobs_triton

from tests.kernels.conftest import ground_truth, torch_path

SLACK = {torch.float32: 1e-5, torch.bfloat16: 1e-2, torch.float16: 1e-2}


def _inputs(T: int, H: int, V: int, dtype: torch.dtype, seed: int = 0, bias: bool = False) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed)
    hidden = (torch.randn(T, H, generator=g) * 1.5).to(dtype)
    weight = (torch.randn(V, H, generator=g) / H**0.5 * 2).to(dtype)
    targets = torch.randint(0, V, (T,), generator=g)
    b = torch.randn(V, generator=g).to(dtype) if bias else None
    return {"hidden": hidden, "weight": weight, "targets": targets, "bias": b}


def _run(backend: str, x: dict[str, Any], temperature: float = 1.0, **tiles: int) -> tuple[torch.Tensor, torch.Tensor]:
    if backend == "triton" and tiles:
        lp, ent = token_logprobs_triton(x["hidden"], x["weight"], x["targets"], x["bias"], temperature, True, **tiles)
        assert ent is not None
        return lp, ent
    out = token_logprobs(x["hidden"], x["weight"], x["targets"], bias=x["bias"], temperature=temperature,
                         return_entropy=True, backend=backend)
    return out  # type: ignore[return-value]


def _assert_no_worse(backend: str, x: dict[str, Any], temperature: float = 1.0, **tiles: int) -> None:
    lp, ent = _run(backend, x, temperature, **tiles)
    assert lp.dtype == ent.dtype == torch.float32 and lp.shape == ent.shape == x["targets"].shape
    ref_lp, ref_ent = ground_truth(x["hidden"], x["weight"], x["targets"], x["bias"], temperature)
    pt_lp, pt_ent = torch_path(x["hidden"], x["weight"], x["targets"], x["bias"], temperature)
    slack = SLACK[x["hidden"].dtype]
    ours, theirs = (lp.double() - ref_lp).abs().max(), (pt_lp.double() - ref_lp).abs().max()
    assert ours <= theirs + slack, f"log-prob error {ours:.3g} vs PyTorch's {theirs:.3g}"
    ours_e, theirs_e = (ent.double() - ref_ent).abs().max(), (pt_ent.double() - ref_ent).abs().max()
    assert ours_e <= theirs_e + slack, f"entropy error {ours_e:.3g} vs PyTorch's {theirs_e:.3g}"


BACKENDS = ["cpu", "triton"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_small_odd_shapes(backend: str, dtype: torch.dtype) -> None:
    _assert_no_worse(backend, _inputs(37, 64, 1000, dtype))
    _assert_no_worse(backend, _inputs(5, 72, 333, dtype, seed=1, bias=True), temperature=0.6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_vocab_50257_large_tiles(backend: str) -> None:
    x = _inputs(37, 64, 50257, torch.float32, seed=2)
    tiles = {"block_t": 64, "block_v": 2048, "block_h": 64} if backend == "triton" else {}
    _assert_no_worse(backend, x, **tiles)


def test_cpu_255_x_50257_bf16_with_bias_and_temperature() -> None:
    _assert_no_worse("cpu", _inputs(255, 96, 50257, torch.bfloat16, seed=3, bias=True), temperature=1.7)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cpu_vocab_not_a_multiple_of_the_chunk(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import passkcore.kernels.logprob_cpu as cpu

    monkeypatch.setattr(cpu, "VOCAB_CHUNK", 96)  # 1000 = 10 x 96 + 40, and tokens in blocks of 16
    monkeypatch.setattr(cpu, "TOKEN_BLOCK", 16)
    _assert_no_worse(backend, _inputs(37, 64, 1000, torch.float32, seed=4, bias=True), temperature=0.9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_deterministic(backend: str) -> None:
    x = _inputs(19, 48, 700, torch.float32, seed=5)
    a, ea = _run(backend, x, 0.8)
    b, eb = _run(backend, x, 0.8)
    assert torch.equal(a, b) and torch.equal(ea, eb)


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_and_zero_tokens(backend: str) -> None:
    _assert_no_worse(backend, _inputs(1, 32, 257, torch.float32))
    x = _inputs(0, 32, 257, torch.float32)
    lp, ent = _run(backend, x)
    assert lp.shape == ent.shape == (0,) and lp.dtype == torch.float32


@pytest.mark.parametrize("backend", BACKENDS)
def test_tied_and_non_contiguous_weights(backend: str) -> None:
    g = torch.Generator().manual_seed(6)
    embedding = torch.nn.Embedding(500, 48)
    with torch.no_grad():
        embedding.weight.copy_(torch.randn(500, 48, generator=g) * 0.3)
    tokens = torch.randint(0, 500, (23,), generator=g)
    hidden = embedding(tokens).detach() * 2  # tied: the head reuses the input embedding
    targets = torch.roll(tokens, 1)
    x = {"hidden": hidden, "weight": embedding.weight.detach(), "targets": targets, "bias": None}
    _assert_no_worse(backend, x)
    wide = torch.randn(500, 96, generator=g) * 0.3
    strided = {"hidden": hidden.T.contiguous().T, "weight": wide[:, ::2], "targets": targets.int(), "bias": None}
    assert not strided["weight"].is_contiguous() and not strided["hidden"].is_contiguous()
    _assert_no_worse(backend, strided)


def test_entropy_flag_and_default_backend() -> None:
    x = _inputs(9, 32, 300, torch.float32)
    lp = token_logprobs(x["hidden"], x["weight"], x["targets"])
    assert isinstance(lp, torch.Tensor) and lp.shape == (9,)
    both = token_logprobs(x["hidden"], x["weight"], x["targets"], return_entropy=True)
    assert torch.equal(both[0], lp)
    assert torch.allclose(lp, naive_token_logprobs(x["hidden"], x["weight"], x["targets"]), atol=1e-5)
    assert torch.allclose(lp, chunked_token_logprobs(x["hidden"], x["weight"], x["targets"], chunk=4), atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_several_temperatures_in_one_pass(backend: str) -> None:
    """token_logprobs_at: each temperature equals its own token_logprobs call, to fp64 truth."""
    x = _inputs(37, 24, 333, torch.float32, seed=5, bias=True)
    temperatures = [1.0, 0.3, 1.7]
    out = token_logprobs_at(x["hidden"], x["weight"], x["targets"], temperatures, bias=x["bias"],
                            return_entropy=True, backend=backend)
    assert len(out) == 3
    for temperature, (lp, ent) in zip(temperatures, out):
        one_lp, one_ent = _run(backend, x, temperature)
        assert ent is not None
        assert torch.allclose(lp, one_lp, atol=1e-6, rtol=0) and torch.allclose(ent, one_ent, atol=1e-6, rtol=0)
        ref_lp, ref_ent = ground_truth(x["hidden"], x["weight"], x["targets"], x["bias"], temperature)
        assert (lp.double() - ref_lp).abs().max() < 1e-5 and (ent.double() - ref_ent).abs().max() < 1e-5
    lp_only = token_logprobs_at(x["hidden"], x["weight"], x["targets"], [0.5], backend=backend, bias=x["bias"])
    assert lp_only[0][1] is None


def test_several_temperatures_bad_input() -> None:
    x = _inputs(4, 8, 16, torch.float32)
    with pytest.raises(ValueError, match="temperatures is empty"):
        token_logprobs_at(x["hidden"], x["weight"], x["targets"], [])
    with pytest.raises(ValueError, match="temperature must be finite and > 0, got -1"):
        token_logprobs_at(x["hidden"], x["weight"], x["targets"], [1.0, -1])
