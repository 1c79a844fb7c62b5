"""GPU only (a lent device): issue 14's scoring rows end to end, response tokens/s and peak memory of
the default scorer (vLLM backbone + Triton fused head), the exact packed path, and the ``vllm``
backend (``prompt_logprobs``), interleaved over rounds. The head alone against Liger-Kernel's fused
linear cross-entropy is ``benches/test_kernels_gpu.py``. vLLM preallocates its own memory pool, so
peak memory here is this process's torch allocations (the head and the packed backbone)."""

from __future__ import annotations

import os
import statistics
from typing import Any

import pytest
import torch

from benches.test_scoring import interleaved, issue_rows, worst_error

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_scoring_paths_on_gpu(benchmark: Any) -> None:
    from passkcore.scoring import Scorer

    rows = issue_rows(int(os.environ.get("PASSK_BENCH_ROWS", "512")))
    tokens = sum(len(r) for _, r in rows)
    default, exact, vllm = Scorer(), Scorer(backend="fused", device="cuda"), Scorer(backend="vllm")
    try:
        for scorer in (default, exact, vllm):
            scorer.token_scores(rows[:2])
        peaks = {}
        for name, scorer in (("default", default), ("fused", exact)):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            scorer.token_scores(rows)
            torch.cuda.synchronize()
            peaks[name] = (torch.cuda.max_memory_allocated() - base) / 2**20
        times, results = interleaved({"default": lambda: default.token_scores(rows),
                                      "fused": lambda: exact.token_scores(rows),
                                      "vllm": lambda: vllm.token_scores(rows)}, 3)
    finally:
        default.close()
        vllm.close()
    benchmark.extra_info.update(
        response_tokens=tokens, **{f"{k}_tok_s": tokens / statistics.median(v) for k, v in times.items()},
        **{f"peak_{k}_mib": v for k, v in peaks.items()},
        max_diff_default_vllm=worst_error(results["default"], results["vllm"]),
    )
    assert statistics.median(times["default"]) <= statistics.median(times["vllm"])
