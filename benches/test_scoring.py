"""Scoring on CPU with SmolLM2: tokens/s and peak memory of the fused backend against torch and vLLM
on the same rows (PASSK_BENCH_ROWS, default 2000), all in one run."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import pytest
from passkcore.kernels._memory import peak_extra_bytes

from benches.conftest import own_time
from passkcore.models import load_tokenizer
from passkcore.problems import arithmetic, load_humaneval
from passkcore.sampling import prompt_token_ids
from passkcore.scoring import Scorer

ROWS = int(os.environ.get("PASSK_BENCH_ROWS", "2000"))


@pytest.fixture(scope="module")
def rows() -> list[tuple[list[int], list[int]]]:
    """Real chat-templated prompts (last 24 tokens) with 16-token responses taken from real text."""
    tok = load_tokenizer("smollm2-135m")
    texts = [p.prompt for p in load_humaneval()]
    problems = arithmetic(ROWS, seed=1)
    out = []
    for i, p in enumerate(problems):
        prompt = prompt_token_ids(tok, p)[-24:]
        response = tok.encode(texts[i % len(texts)], add_special_tokens=False)[:16]
        out.append((prompt, response))
    return out


def test_fused_vs_torch_vs_vllm(benchmark: Any, rows: list[tuple[list[int], list[int]]]) -> None:
    tokens = sum(len(r) for _, r in rows)
    fused, torch_ref = Scorer(backend="fused"), Scorer(backend="torch")
    fused.token_scores(rows[:8])
    torch_ref.token_scores(rows[:8])  # load weights and compile numba before timing
    ours = benchmark.pedantic(lambda: fused.token_scores(rows), rounds=1, iterations=1)
    t_fused = own_time(benchmark)
    peak_fused = peak_extra_bytes(lambda: fused.token_scores(rows[:500]))[0]
    start = time.perf_counter()
    peak_torch, theirs = peak_extra_bytes(lambda: torch_ref.token_scores(rows))
    t_torch = time.perf_counter() - start
    peak_torch_500 = peak_extra_bytes(lambda: torch_ref.token_scores(rows[:500]))[0]
    vllm = Scorer(backend="vllm")
    vllm.token_scores(rows[:8])
    start = time.perf_counter()
    via_vllm = vllm.token_scores(rows)
    t_vllm = time.perf_counter() - start
    diff = max(float(np.abs(a[0] - b[0]).max()) for a, b in zip(ours, theirs))
    diff_vllm = max(float(np.abs(a[0] - b[0]).max()) for a, b in zip(via_vllm, theirs))
    benchmark.extra_info.update(
        rows=len(rows), response_tokens=tokens, fused_tok_s=tokens / t_fused, torch_tok_s=tokens / t_torch,
        vllm_tok_s=tokens / t_vllm, fused_vs_torch_time=t_fused / t_torch,
        peak_fused_500_mib=peak_fused / 2**20, peak_torch_500_mib=peak_torch_500 / 2**20,
        max_diff_fused_torch=diff, max_diff_vllm_torch=diff_vllm,
    )
    assert diff <= 1e-4
    assert t_fused <= t_torch * 1.05  # at least as fast, within timing noise
    assert peak_fused < peak_torch_500
