"""CPU twin of the fused log-prob head: BLAS tile products, an online log-sum-exp in numba.

The head walks the vocabulary in chunks of VOCAB_CHUNK rows and the tokens in blocks of TOKEN_BLOCK:
each [TOKEN_BLOCK, VOCAB_CHUNK] logits tile comes from one BLAS product (torch, all cores), and a numba
kernel (``prange`` over the tile's token rows) folds it into per-token running max, sum of exponentials,
entropy term and target logit. Extra memory is one tile (2048 x 4096 fp32 = 32 MiB) plus O(T) state,
never [T, V]: for SmolLM2 at T = 8192 the naive path holds two 1.5 GiB [T, V] tensors.

Every tile product has the same shape, [TOKEN_BLOCK, H] x [H, VOCAB_CHUNK] (the last token block is
zero-padded): BLAS picks its kernel, and so its summation order, by shape, and a small M otherwise
moved a token's log-prob by ~1e-5 depending on how many other tokens shared its call (measured with
MKL on SmolLM2). With fixed shapes a token scores bit-identically alone or in any batch.

The BLAS product runs outside numba on purpose: numba's threads calling a threaded BLAS from inside
``prange`` nest two thread pools on the same cores (OpenBLAS warns "Detect OpenMP Loop").
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
from numba import njit, prange

TOKEN_BLOCK = 256
VOCAB_CHUNK = 4096


@njit(parallel=True, cache=False, fastmath=False)
def _online_lse_update(tile, v0, bias, inv_temp, targets, row0, m, s, t, z, with_entropy):
    """Folds one logits tile (rows row0.., vocab v0..) into the running per-token state.

    State is float64: m (max), s (sum of exp(x - m)), t (sum of exp(x - m) * (x - m)), z (target logit).
    Logits are (hidden @ W^T + bias) * inv_temp, the target logit taken from the same fp32 tile.
    """
    rows, cols = tile.shape
    has_bias = bias.shape[0] > 0
    for r in prange(rows):
        i = row0 + r
        row = tile[r]
        tile_max = -np.inf
        for j in range(cols):
            x = row[j]
            if has_bias:
                x += bias[j]
            x *= inv_temp
            row[j] = x
            if x > tile_max:
                tile_max = x
        old_m = m[i]
        new_m = max(old_m, np.float64(tile_max))
        acc = 0.0
        acc_t = 0.0
        for j in range(cols):
            d = np.float64(row[j]) - new_m
            e = math.exp(d)
            acc += e
            if with_entropy:
                acc_t += e * d
        if s[i] > 0.0:
            alpha = math.exp(old_m - new_m)
            t[i] = alpha * (t[i] + s[i] * (old_m - new_m))
            s[i] = alpha * s[i]
        s[i] += acc
        t[i] += acc_t
        m[i] = new_m
        k = targets[i] - v0
        if 0 <= k < cols:
            z[i] = row[k]


def token_logprobs_cpu(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    temperature: float = 1.0,
    return_entropy: bool = False,
) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Log-probs (and entropy) of the targets, fp32 [T]; inputs already checked."""
    T, V = hidden.shape[0], weight.shape[0]
    if T == 0:
        empty = torch.empty(0, dtype=torch.float32)
        return empty, (empty.clone() if return_entropy else None)
    blocks = -(-T // TOKEN_BLOCK)
    h32 = torch.zeros((blocks * TOKEN_BLOCK, hidden.shape[1]), dtype=torch.float32)
    h32[:T] = hidden.detach().to(device="cpu", dtype=torch.float32)
    tg = targets.detach().to(device="cpu", dtype=torch.int64).contiguous().numpy()
    b32 = (bias.detach().to(device="cpu", dtype=torch.float32).contiguous().numpy()
           if bias is not None else np.zeros(0, dtype=np.float32))
    m = np.full(T, -np.inf)
    s = np.zeros(T)
    t = np.zeros(T)
    z = np.zeros(T)
    inv_temp = 1.0 / float(temperature)
    tile = torch.empty((TOKEN_BLOCK, min(V, VOCAB_CHUNK)), dtype=torch.float32)
    for v0 in range(0, V, VOCAB_CHUNK):
        v1 = min(V, v0 + VOCAB_CHUNK)
        w_chunk = weight.detach()[v0:v1].to(device="cpu", dtype=torch.float32)  # upcast once per chunk
        b_chunk = b32[v0:v1] if b32.size else b32
        out = tile if v1 - v0 == tile.shape[1] else torch.empty((TOKEN_BLOCK, v1 - v0), dtype=torch.float32)
        for r0 in range(0, T, TOKEN_BLOCK):
            torch.matmul(h32[r0:r0 + TOKEN_BLOCK], w_chunk.T, out=out)
            rows = min(TOKEN_BLOCK, T - r0)
            _online_lse_update(out.numpy()[:rows], v0, b_chunk, inv_temp, tg, r0, m, s, t, z, return_entropy)
    log_s = np.log(s)
    logprobs = torch.from_numpy((z - m - log_s).astype(np.float32))
    entropy = torch.from_numpy((log_s - t / s).astype(np.float32)) if return_entropy else None
    return logprobs, entropy
