"""GPU only (a lent device): the Triton head against the naive path, Liger-Kernel and Apple's
cut-cross-entropy per-token losses, when those packages are installed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def _cuda_time(fn: Callable[[], Any], repeats: int = 10) -> float:
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1e3 / repeats


def _peak(fn: Callable[[], Any]) -> int:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


def _peers(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> dict[str, Callable[[], Any]]:
    from passkcore.kernels import naive_token_logprobs, token_logprobs

    peers: dict[str, Callable[[], Any]] = {
        "passkcore": lambda: token_logprobs(hidden, weight, targets),
        "naive": lambda: naive_token_logprobs(hidden, weight, targets),
    }
    try:
        from cut_cross_entropy import linear_cross_entropy

        peers["cut_cross_entropy"] = lambda: -linear_cross_entropy(hidden, weight, targets, reduction="none")
    except ImportError:
        pass
    try:
        from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy

        peers["liger"] = lambda: -liger_fused_linear_cross_entropy(hidden, weight, targets, reduction="none")
    except ImportError:
        pass
    return peers


@pytest.mark.parametrize(("T", "H", "V"), [(16384, 3584, 152064), (16384, 576, 49152)])
def test_gpu_head_throughput_and_memory(T: int, H: int, V: int) -> None:
    g = torch.Generator(device="cuda").manual_seed(0)
    hidden = torch.randn(T, H, device="cuda", generator=g, dtype=torch.bfloat16)
    weight = (torch.randn(V, H, device="cuda", generator=g) / H**0.5).to(torch.bfloat16)
    targets = torch.randint(0, V, (T,), device="cuda", generator=g)
    rows = {}
    for name, fn in _peers(hidden, weight, targets).items():
        try:
            rows[name] = (T / _cuda_time(fn), _peak(fn) / 2**20)
        except (RuntimeError, TypeError) as exc:  # e.g. out of memory, or a peer without reduction="none"
            rows[name] = (float("nan"), float("nan"))
            print(f"{name}: {exc}")
    for name, (tps, mib) in rows.items():
        print(f"T={T} H={H} V={V} {name}: {tps:,.0f} tokens/s, peak {mib:,.0f} MiB")
    # H100 (docs/benchmarks.md, "GPU"): 9.4x the naive path at the 7B shape, 6.3x at SmolLM2's; 28.5 GB -> 2 MiB
    assert rows["passkcore"][1] < rows["naive"][1]
    assert rows["passkcore"][0] >= 4 * rows["naive"][0]


@pytest.mark.slow
def test_gpu_scoring_fused_vs_vllm_prompt_logprobs() -> None:
    """Issue 14's rows on a GPU: the default fused scorer (packed backbone + Triton head, entropy) against
    the vllm backend (``prompt_logprobs``), response tokens/s; and the fused scorer's peak memory."""
    import time

    from benches.test_scoring import issue_rows
    from passkcore.scoring import Scorer

    rows = issue_rows()
    tokens = sum(len(r) for _, r in rows)
    fused = Scorer()
    fused.token_scores(rows[:2])
    torch.cuda.synchronize()
    start = time.perf_counter()
    peak, ours = _peak(lambda: fused.token_scores(rows)), None
    t_fused = time.perf_counter() - start
    ours = fused.token_scores(rows)
    vllm = Scorer(backend="vllm")
    vllm.token_scores(rows[:2])
    start = time.perf_counter()
    theirs = vllm.token_scores(rows)
    t_vllm = time.perf_counter() - start
    worst = max(float((torch.as_tensor(a[0]) - torch.as_tensor(b[0])).abs().max()) for a, b in zip(ours, theirs))
    print(f"fused: {tokens / t_fused:,.0f} tokens/s, peak {peak / 2**20:,.0f} MiB; "
          f"vllm prompt_logprobs: {tokens / t_vllm:,.0f} tokens/s; max |diff| {worst:.2e}")
    assert worst <= 1e-3
