"""The packed decoder's element-wise CPU kernels against fp64 truth, no worse than torch's fp32 ops."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from passkcore.kernels.decoder_cpu import rms_norm, rotary_pairs_


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (37, 576), (130, 1000)])
def test_rms_norm_matches_fp64(shape: tuple[int, int]) -> None:
    gen = torch.Generator().manual_seed(shape[0])
    x = torch.randn(shape, generator=gen) * 3
    w = torch.randn(shape[1], generator=gen)
    truth = F.rms_norm(x.double(), (shape[1],), w.double(), 1e-5)
    ours = rms_norm(x, w, 1e-5)
    torch_error = float((F.rms_norm(x, (shape[1],), w, 1e-5).double() - truth).abs().max())
    assert ours.shape == x.shape and ours.dtype == torch.float32
    assert float((ours.double() - truth).abs().max()) <= max(2 * torch_error, 1e-6)


def test_rms_norm_of_zeros_is_zero_not_nan() -> None:
    out = rms_norm(torch.zeros(2, 8), torch.ones(8), 1e-6)
    assert torch.equal(out, torch.zeros(2, 8))


def _rotate_fp64(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, width: int) -> torch.Tensor:
    out = x.double().clone()
    half = cos.shape[1]
    pairs = out[:, :width].reshape(len(x), width // (2 * half), half, 2)
    a, b = pairs[..., 0].clone(), pairs[..., 1].clone()
    c, s = cos.double()[:, None], sin.double()[:, None]
    pairs[..., 0], pairs[..., 1] = a * c - b * s, a * s + b * c
    return out


@pytest.mark.parametrize(("rows", "heads", "half", "extra"), [(1, 1, 1, 0), (5, 3, 4, 6), (33, 12, 32, 192)])
def test_rotary_pairs_match_fp64_and_leave_the_rest(rows: int, heads: int, half: int, extra: int) -> None:
    gen = torch.Generator().manual_seed(rows)
    width = heads * 2 * half
    x = torch.randn(rows, width + extra, generator=gen)
    angles = torch.rand(rows, half, generator=gen) * 100
    cos, sin = torch.cos(angles), torch.sin(angles)
    truth = _rotate_fp64(x, cos, sin, width)
    ours = x.clone()
    assert rotary_pairs_(ours, cos, sin, width) is ours
    assert float((ours.double() - truth).abs().max()) <= 1e-5
    assert torch.equal(ours[:, width:], x[:, width:])  # the v columns untouched


def test_bad_input_is_named() -> None:
    x = torch.zeros(4, 16)
    with pytest.raises(TypeError, match="x must be a contiguous fp32"):
        rms_norm(x.double(), torch.ones(16), 1e-6)
    with pytest.raises(TypeError, match="not contiguous"):
        rms_norm(x.T, torch.ones(4), 1e-6)
    with pytest.raises(ValueError, match="width 12"):
        rotary_pairs_(x, torch.ones(4, 4), torch.ones(4, 4), 12)  # not whole heads of 8 columns
    with pytest.raises(ValueError, match="cos"):
        rotary_pairs_(x, torch.ones(3, 4), torch.ones(3, 4), 8)  # a row short
    with pytest.raises(ValueError, match="weight"):
        rms_norm(x, torch.ones(15), 1e-6)
