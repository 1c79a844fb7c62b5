"""The packed CPU decoder's element-wise passes (``passkcore.scoring.decoder``), one numba loop each.

Why not torch's ops: each is a chain of passes over [tokens, H]. Measured single-threaded on SmolLM2
(a pack of 543 response tokens, 1.5 s): ``F.rms_norm`` ran pow, mean, add, rsqrt and two multiplies
(64 ms of the pack, 4%; this loop reads a row once into L1 and is 4.4x faster at 900 x 576), and
rotary was a copy to complex pairs, a complex multiply and a copy back (~2%; here one pass in place).
Both loops are nogil, so the scorer's worker threads run them side by side.
"""

from __future__ import annotations

from passkcore.extras import needs_extra

with needs_extra("kernels", by=__name__):
    import numpy as np
    import torch
    from numba import njit

__all__ = ["rms_norm", "rotary_pairs_"]


@njit(nogil=True, cache=False, fastmath=True)
def _rms_norm(x, w, eps, out):  # pragma: no cover - compiled
    n, h = x.shape
    for i in range(n):
        acc = np.float32(0.0)
        for j in range(h):
            acc += x[i, j] * x[i, j]
        r = np.float32(1.0) / np.sqrt(acc / np.float32(h) + eps)
        for j in range(h):
            out[i, j] = x[i, j] * r * w[j]


@njit(nogil=True, cache=False, fastmath=True)
def _rotary_pairs(x, cos, sin, width):  # pragma: no cover - compiled
    n = x.shape[0]
    half = cos.shape[1]
    for i in range(n):
        for h0 in range(0, width, 2 * half):
            for p in range(half):
                a = x[i, h0 + 2 * p]
                b = x[i, h0 + 2 * p + 1]
                x[i, h0 + 2 * p] = a * cos[i, p] - b * sin[i, p]
                x[i, h0 + 2 * p + 1] = a * sin[i, p] + b * cos[i, p]


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """``x / sqrt(mean(x**2) + eps) * weight`` per row of a contiguous fp32 [N, H]; a new tensor."""
    _check_fp32(x=x, weight=weight)
    if x.dim() != 2 or weight.shape != (x.shape[1],):
        raise ValueError(f"rms_norm: x must be [N, H] and weight [H], got x {tuple(x.shape)}, weight {tuple(weight.shape)}")
    out = torch.empty_like(x)
    _rms_norm(x.numpy(), weight.numpy(), np.float32(eps), out.numpy())
    return out


def rotary_pairs_(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, width: int) -> torch.Tensor:
    """Rotates the first ``width`` columns of fp32 [N, C] in place, heads of 2 * D columns stored
    pairwise (x1_0, x2_0, x1_1, x2_1, ...): each pair (a, b) of row i becomes (a cos - b sin,
    a sin + b cos) at ``cos[i, p]``, ``sin[i, p]`` [N, D]. Returns ``x``."""
    _check_fp32(x=x, cos=cos, sin=sin)
    if (x.dim() != 2 or cos.dim() != 2 or cos.shape != sin.shape or cos.shape[0] != x.shape[0] or cos.shape[1] == 0
            or width % (2 * cos.shape[1]) or not 0 <= width <= x.shape[1]):
        raise ValueError(f"rotary_pairs_: x {tuple(x.shape)}, cos {tuple(cos.shape)}, sin {tuple(sin.shape)} "
                         f"and width {width} do not fit")
    _rotary_pairs(x.numpy(), cos.numpy(), sin.numpy(), width)
    return x


def _check_fp32(**tensors: torch.Tensor) -> None:
    for name, t in tensors.items():
        if t.dtype != torch.float32 or t.device.type != "cpu" or not t.is_contiguous():
            raise TypeError(f"{name} must be a contiguous fp32 CPU tensor, got {t.dtype} on {t.device}"
                            f"{'' if t.is_contiguous() else ', not contiguous'}")
