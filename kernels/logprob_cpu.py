"""CPU twin of the fused log-prob head: BLAS tile products, an online log-sum-exp in numba.

The head walks the vocabulary in chunks of VOCAB_CHUNK rows and the tokens in blocks of TOKEN_BLOCK:
each [TOKEN_BLOCK, VOCAB_CHUNK] logits tile comes from one BLAS product and a numba kernel folds it
into per-token running max, sum of exponentials, entropy term and target logit. Extra memory per
worker is one tile (256 x 4096 fp32 = 4 MiB) and one fp32 weight chunk (9 MiB at H = 576), plus O(T)
state, never [T, V]: for SmolLM2 at T = 8192 the naive path holds two 1.5 GiB [T, V] tensors.

Parallelism: one worker thread per torch thread, each owning every n-th token block and running a
single-threaded BLAS product and a serial (nogil) fold on it. The earlier layout (every tile product
on all cores, then a numba ``prange`` over the tile's rows) put two barriers per tile: 384 parallel
regions at T = 8192, and on this shared 2-core machine a barrier waits for its slowest, descheduled
thread. Measured interleaved at T = 4096 under a load of ~15: 2.0x the bare ``hidden @ W.T`` with
barriers, 1.02x with independent workers.

The last token block is as long as what is left (T mod TOKEN_BLOCK rows), not zero-padded: padding made
every tile product one shape, so that a token scored bit-identically alone or in any batch (BLAS picks
its kernel, and so its summation order, by shape: a short block moves a log-prob by ~1e-6 to 1e-5,
measured with MKL on SmolLM2), but it cost the scorer a padded block per pack, 10% of the head's
products on the issue-42 study rows (517 of 5,120 tokens). The scorer's hidden states differ by as
much between packs anyway (GEMMs of other M), so that identity never reached a score; runs stay
deterministic (the same input gives the same bits).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import numpy as np

from passkcore.extras import needs_extra

with needs_extra("kernels", by=__name__):
    import torch
    from numba import njit

TOKEN_BLOCK = 256
VOCAB_CHUNK = 4096


@njit(fastmath=True, inline="always")
def _exp_nonpositive(d, e, bits):
    """e * 2**(bits) = exp(d) for d <= 0, the Cephes expf polynomial (relative error ~2e-7).

    Written without calls or branches so that LLVM vectorises it (8 floats per AVX2 instruction):
    numba's ``math.exp`` is a scalar libm call per element (no SVML here), and that call was most of
    the head's cost beyond the tile product (fold of a 256 x 4096 tile: ~14 ms with float64
    ``math.exp``, ~7 ms with this, measured on the 2-core machine).
    """
    for j in range(d.shape[0]):
        x = max(d[j], np.float32(-87.0))  # exp(-87) ~ 1.6e-38: below that the term cannot matter
        fx = np.floor(x * np.float32(1.44269504) + np.float32(0.5))
        x = x - fx * np.float32(0.693359375) - fx * np.float32(-2.12194440e-4)
        y = np.float32(1.9875691500e-4)
        y = y * x + np.float32(1.3981999507e-3)
        y = y * x + np.float32(8.3334519073e-3)
        y = y * x + np.float32(4.1665795894e-2)
        y = y * x + np.float32(1.6666665459e-1)
        y = y * x + np.float32(5.0000001201e-1)
        e[j] = y * x * x + x + np.float32(1.0)
        bits[j] = (np.int32(fx) + np.int32(127)) << np.int32(23)  # the float 2**fx, as its bits


@njit(nogil=True, cache=False, fastmath=True)
def _online_lse_update(tile, v0, bias, inv_temps, targets, row0, m, s, t, z, with_entropy):
    """Folds one logits tile (rows row0.., vocab v0..) into the running per-token state of every
    temperature (state row k for ``inv_temps[k]``); the tile itself is left as it was.

    State is float64: m (max), s (sum of exp(x - m)), t (sum of exp(x - m) * (x - m)), z (target logit).
    Logits are (hidden @ W^T + bias) * inv_temp, the target logit taken from the same fp32 tile. The
    tile's own sums are taken against the tile's max and merged into the running state afterwards.
    One tile product serves every temperature: the fold is ~1/10 of a tile's cost (measured: 25 of
    225 ms for SmolLM2's head on 458 tokens), the product the rest.
    """
    rows, cols = tile.shape
    has_bias = bias.shape[0] > 0
    d = np.empty(cols, np.float32)
    e = np.empty(cols, np.float32)
    bits = np.empty(cols, np.int32)
    scale = bits.view(np.float32)
    for r in range(rows):
        i = row0 + r
        row = tile[r]
        for q in range(inv_temps.shape[0]):
            inv_temp = inv_temps[q]
            tile_max = np.float32(-np.inf)
            if has_bias:
                for j in range(cols):
                    d[j] = (row[j] + bias[j]) * inv_temp
            else:
                for j in range(cols):
                    d[j] = row[j] * inv_temp
            for j in range(cols):
                tile_max = max(tile_max, d[j])
            k = targets[i] - v0
            if 0 <= k < cols:
                z[q, i] = d[k]
            for j in range(cols):
                d[j] = d[j] - tile_max
            _exp_nonpositive(d, e, bits)
            acc = 0.0
            acc_t = 0.0
            if with_entropy:
                for j in range(cols):
                    x = e[j] * scale[j]
                    acc += x
                    acc_t += x * d[j]
            else:
                for j in range(cols):
                    acc += e[j] * scale[j]
            _merge(q, i, np.float64(tile_max), acc, acc_t, m, s, t)


@njit(nogil=True, cache=False, inline="always")
def _merge(q, i, tm, acc, acc_t, m, s, t):
    """Merges a tile's sums (against its max ``tm``) into the running state of token i, temperature q."""
    old_m = m[q, i]
    if s[q, i] > 0.0 and old_m >= tm:  # rescale the tile's sums to the running max
        a = math.exp(tm - old_m)
        s[q, i] += a * acc
        t[q, i] += a * (acc_t + acc * (tm - old_m))
    elif s[q, i] > 0.0:  # rescale the running sums to the tile's max
        a = math.exp(old_m - tm)
        t[q, i] = a * (t[q, i] + s[q, i] * (old_m - tm)) + acc_t
        s[q, i] = a * s[q, i] + acc
        m[q, i] = tm
    else:
        s[q, i], t[q, i], m[q, i] = acc, acc_t, tm


def _token_blocks(hidden: torch.Tensor) -> list[torch.Tensor]:
    """fp32 views of at most TOKEN_BLOCK rows of the hidden states: fp32 input costs no [T, H] copy
    (18 MiB at T = 8192, H = 576)."""
    h = hidden.detach().to(device="cpu", dtype=torch.float32).contiguous()
    return [h[r0:r0 + TOKEN_BLOCK] for r0 in range(0, h.shape[0], TOKEN_BLOCK)]


def token_logprobs_cpu(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    temperature: float = 1.0,
    return_entropy: bool = False,
) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Log-probs (and entropy) of the targets, fp32 [T]; inputs already checked."""
    return token_logprobs_cpu_at(hidden, weight, targets, bias, [temperature], return_entropy)[0]


def token_logprobs_cpu_at(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    bias: Optional[torch.Tensor],
    temperatures: Sequence[float],
    return_entropy: bool = False,
) -> list[tuple[torch.Tensor, Optional[torch.Tensor]]]:
    """``token_logprobs_cpu`` at every temperature from one pass of tile products; inputs already checked."""
    T, V = hidden.shape[0], weight.shape[0]
    if T == 0:
        empty = torch.empty(0, dtype=torch.float32)
        return [(empty.clone(), (empty.clone() if return_entropy else None)) for _ in temperatures]
    blocks = _token_blocks(hidden)
    tg = targets.detach().to(device="cpu", dtype=torch.int64).contiguous().numpy()
    b32 = (bias.detach().to(device="cpu", dtype=torch.float32).contiguous().numpy()
           if bias is not None else np.zeros(0, dtype=np.float32))
    shape = (len(temperatures), T)
    m = np.full(shape, -np.inf)
    s = np.zeros(shape)
    t = np.zeros(shape)
    z = np.zeros(shape)
    inv_temps = np.array([1.0 / float(x) for x in temperatures], dtype=np.float32)
    w = weight.detach()

    def work(first: int, step: int) -> None:
        tile = torch.empty((TOKEN_BLOCK, min(V, VOCAB_CHUNK)), dtype=torch.float32)
        for v0 in range(0, V, VOCAB_CHUNK):
            v1 = min(V, v0 + VOCAB_CHUNK)
            w_chunk = w[v0:v1].to(device="cpu", dtype=torch.float32)  # upcast once per chunk and worker
            b_chunk = b32[v0:v1] if b32.size else b32
            out = tile if v1 - v0 == tile.shape[1] else torch.empty((TOKEN_BLOCK, v1 - v0), dtype=torch.float32)
            for k in range(first, len(blocks), step):
                rows = len(blocks[k])
                torch.matmul(blocks[k], w_chunk.T, out=out[:rows])
                _online_lse_update(out.numpy()[:rows], v0, b_chunk, inv_temps, tg, k * TOKEN_BLOCK, m, s, t, z,
                                   return_entropy)

    workers = min(torch.get_num_threads(), len(blocks))
    if workers <= 1:
        work(0, 1)
    else:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # one single-threaded BLAS per worker, restored below
        try:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(work, range(workers), [workers] * workers))
        finally:
            torch.set_num_threads(threads)
    log_s = np.log(s)
    logprobs = (z - m - log_s).astype(np.float32)
    entropy = (log_s - t / s).astype(np.float32) if return_entropy else None
    return [(torch.from_numpy(logprobs[q]), torch.from_numpy(entropy[q]) if entropy is not None else None)
            for q in range(len(temperatures))]
