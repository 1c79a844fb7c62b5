"""Triton fused log-prob head: ``log softmax((hidden @ W^T + b) / temperature)[target]`` without [T, V].

Grid: (token blocks, vocabulary splits). Each program walks its split in BLOCK_V tiles, builds the
[BLOCK_T, BLOCK_V] logits tile in fp32 from BLOCK_H slices (tl.dot), and keeps an online log-sum-exp:
running max m (identity -inf), sum s of exp(x - m), entropy term t = sum exp(x - m) (x - m), and the
target logit taken from the same fp32 tile. Splits write (m, s, t, z) to [splits, T] buffers, reduced
deterministically by the launcher (max, then rescaled sums): no atomics, bit-identical run to run.
Extra memory: 4 x splits x T floats.

Run on CPU tensors with TRITON_INTERPRET=1 set before import (the interpreter has no bf16 arithmetic,
so UPCAST converts tiles to fp32 before tl.dot there).
"""

from __future__ import annotations

from typing import Optional

from passkcore.extras import needs_extra

with needs_extra("kernels", by=__name__):
    import torch
    import triton
    import triton.language as tl
    from triton.runtime.errors import OutOfResources


@triton.jit
def _token_logprobs_fwd_kernel(
    h_ptr, w_ptr, b_ptr, tgt_ptr,
    m_out, s_out, t_out, z_out,
    n_tokens, hidden, vocab, vocab_per_split,
    stride_ht, stride_hh, stride_wv, stride_wh,
    inv_temp,
    HAS_BIAS: tl.constexpr, WITH_ENTROPY: tl.constexpr, UPCAST: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_T: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_H: tl.constexpr,
):
    pid_t = tl.program_id(0)
    pid_s = tl.program_id(1)
    offs_t = pid_t * BLOCK_T + tl.arange(0, BLOCK_T)
    t_mask = offs_t < n_tokens
    tgt = tl.load(tgt_ptr + offs_t, mask=t_mask, other=-1)
    v_start = pid_s * vocab_per_split
    v_end = tl.minimum(v_start + vocab_per_split, vocab)
    scale = tl.cast(inv_temp, tl.float32)  # explicit fp32: it enters the loop-carried state

    m = tl.full([BLOCK_T], float("-inf"), tl.float32)
    s = tl.zeros([BLOCK_T], tl.float32)
    t = tl.zeros([BLOCK_T], tl.float32)
    z = tl.full([BLOCK_T], float("-inf"), tl.float32)
    for v0 in range(v_start, v_end, BLOCK_V):
        offs_v = v0 + tl.arange(0, BLOCK_V)
        v_mask = offs_v < v_end
        acc = tl.zeros([BLOCK_T, BLOCK_V], tl.float32)
        for h0 in range(0, hidden, BLOCK_H):
            offs_h = h0 + tl.arange(0, BLOCK_H)
            h_mask = offs_h < hidden
            hb = tl.load(h_ptr + offs_t[:, None] * stride_ht + offs_h[None, :] * stride_hh,
                         mask=t_mask[:, None] & h_mask[None, :], other=0.0)
            wb = tl.load(w_ptr + offs_v[None, :] * stride_wv + offs_h[:, None] * stride_wh,
                         mask=v_mask[None, :] & h_mask[:, None], other=0.0)
            if UPCAST:
                hb = hb.to(tl.float32)
                wb = wb.to(tl.float32)
            acc = tl.dot(hb, wb, acc, input_precision=PRECISION)
        if HAS_BIAS:
            bias = tl.load(b_ptr + offs_v, mask=v_mask, other=0.0).to(tl.float32)
            acc = acc + bias[None, :]
        logits = tl.where(v_mask[None, :], acc * scale, float("-inf"))
        m_new = tl.maximum(m, tl.max(logits, axis=1))  # every tile has a valid column: m_new is finite
        p = tl.exp(logits - m_new[:, None])
        alpha = tl.exp(m - m_new)
        if WITH_ENTROPY:
            d = tl.where(v_mask[None, :], logits - m_new[:, None], 0.0)
            shift = s * tl.where(s > 0, m - m_new, 0.0)  # m is -inf before the first tile: no 0 * inf
            t = alpha * (t + shift) + tl.sum(p * d, axis=1)
        s = s * alpha + tl.sum(p, axis=1)
        m = m_new
        hit = offs_v[None, :] == tgt[:, None]
        z = tl.maximum(z, tl.max(tl.where(hit, logits, float("-inf")), axis=1))
    out = pid_s * n_tokens + offs_t
    tl.store(m_out + out, m, mask=t_mask)
    tl.store(s_out + out, s, mask=t_mask)
    tl.store(z_out + out, z, mask=t_mask)
    if WITH_ENTROPY:
        tl.store(t_out + out, t, mask=t_mask)


def is_interpreted() -> bool:
    return not hasattr(_token_logprobs_fwd_kernel, "run") or type(_token_logprobs_fwd_kernel).__name__ == "InterpretedFunction"


def _splits(n_tokens: int, vocab: int, block_t: int, block_v: int, device: torch.device) -> int:
    """Enough vocabulary splits to give every SM ~4 programs when tokens alone do not."""
    token_programs = triton.cdiv(n_tokens, block_t)
    sms = torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 1
    return max(1, min(triton.cdiv(vocab, block_v), triton.cdiv(4 * sms, token_programs)))


# (BLOCK_T, BLOCK_V, BLOCK_H, num_warps, num_stages), measured on an H100 with entropy (docs/benchmarks.md, "GPU"):
# bf16 at Qwen2.5-7B's head (T 16,384, H 3,584, V 152,064) ran 179k tokens/s at (32, 128, 64, 4, 3),
# 444k at the second row below and 452k at the first (192 KB of shared memory: H100 only; the second
# fits an A100's 164 KB, the last ~50 KB). fp32 (T 4,096): 10k with IEEE dots, 58k with 3xTF32 dots,
# whose error against fp64 (1.6e-6) is below IEEE's (4.4e-6) here.
_CUDA_CONFIGS = {
    "half": ((128, 256, 64, 8, 4), (128, 256, 64, 8, 3), (64, 128, 64, 4, 2)),
    "fp32": ((128, 128, 32, 8, 3), (64, 64, 32, 4, 2)),
}
_INTERPRETED_CONFIG = (32, 128, 64, 4, 3)  # the interpreter's cost is per program, not per tile


def _configs(dtype: torch.dtype, n_tokens: int) -> list[tuple[int, int, int, int, int]]:
    """Tile configurations to try in order; BLOCK_T shrinks to the tokens there are (tl.dot needs 16)."""
    if is_interpreted():
        return [_INTERPRETED_CONFIG]
    rows = _CUDA_CONFIGS["fp32" if dtype == torch.float32 else "half"]
    fit = max(16, triton.next_power_of_2(n_tokens))
    return [(min(bt, fit), bv, bh, nw, ns) for bt, bv, bh, nw, ns in rows]


def token_logprobs_triton(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    temperature: float = 1.0,
    return_entropy: bool = False,
    *,
    block_t: Optional[int] = None,
    block_v: Optional[int] = None,
    block_h: Optional[int] = None,
    num_warps: Optional[int] = None,
    num_stages: Optional[int] = None,
    fp32_precision: Optional[str] = None,
) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Launcher: log-probs (and entropy) of the targets, fp32 [T]; inputs already checked. Tiles and
    fp32 dot precision ("tf32x3" on CUDA, "ieee" interpreted) default to the measured table above;
    a tile that does not fit the GPU's shared memory falls back to the next row."""
    if hidden.device.type != "cuda" and not is_interpreted():
        raise ValueError("backend='triton' needs CUDA tensors, or TRITON_INTERPRET=1 set before importing "
                         "passkcore.kernels to run the kernel on CPU tensors")
    given = (block_t, block_v, block_h, num_warps, num_stages)
    configs = [tuple(g if g is not None else d for g, d in zip(given, row))
               for row in _configs(hidden.dtype, hidden.shape[0])]
    precision = fp32_precision or ("ieee" if is_interpreted() else "tf32x3")
    for k, config in enumerate(configs):
        try:
            return _launch(hidden, weight, targets, bias, temperature, return_entropy, config, precision)
        except OutOfResources:
            if k == len(configs) - 1:
                raise
    raise AssertionError("unreachable")


def _launch(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, bias: Optional[torch.Tensor],
            temperature: float, return_entropy: bool, config: tuple[int, ...],
            precision: str) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    block_t, block_v, block_h, num_warps, num_stages = config
    T, H = hidden.shape
    V = weight.shape[0]
    dev = hidden.device
    if T == 0:
        empty = torch.empty(0, dtype=torch.float32, device=dev)
        return empty, (empty.clone() if return_entropy else None)
    splits = _splits(T, V, block_t, block_v, dev)
    per_split = triton.cdiv(triton.cdiv(V, splits), block_v) * block_v
    splits = triton.cdiv(V, per_split)
    m, s, t, z = (torch.empty((splits, T), dtype=torch.float32, device=dev) for _ in range(4))
    tgt = targets.to(torch.int64).contiguous()
    b = bias.contiguous() if bias is not None else hidden  # any valid pointer when HAS_BIAS is off
    grid = (triton.cdiv(T, block_t), splits)
    _token_logprobs_fwd_kernel[grid](
        hidden, weight, b, tgt, m, s, t, z,
        T, H, V, per_split,
        hidden.stride(0), hidden.stride(1), weight.stride(0), weight.stride(1),
        1.0 / float(temperature),
        HAS_BIAS=bias is not None, WITH_ENTROPY=return_entropy,
        UPCAST=is_interpreted() or hidden.dtype == torch.float32,
        PRECISION=precision if hidden.dtype == torch.float32 or is_interpreted() else "tf32",
        BLOCK_T=block_t, BLOCK_V=block_v, BLOCK_H=block_h, num_warps=num_warps, num_stages=num_stages,
    )
    big_m = m.max(dim=0).values
    rescale = torch.exp(m - big_m)
    total = (s * rescale).sum(dim=0)
    log_total = torch.log(total)
    logprobs = z.max(dim=0).values - big_m - log_total
    entropy = None
    if return_entropy:
        t_total = (rescale * (t + s * (m - big_m))).sum(dim=0)
        entropy = log_total - t_total / total
    return logprobs, entropy
