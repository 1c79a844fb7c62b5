"""Sampling on the embedded model: the sample stage (vLLM's step loop, shards stored as items finish)
against one raw ``llm.generate`` over the same requests and seeds, on the same engine, in one run
(32 problems x n = 16, temperature 1.0, max 256 tokens; PASSK_BENCH_SAMPLING_PROBLEMS resizes it).
Minutes of CPU."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from benches.conftest import own_time
from passkcore.pipeline import commands
from passkcore.problems import arithmetic
from passkcore.sampling import SamplingConfig, generate_requests, make_llm, plan_requests

PROBLEMS = int(os.environ.get("PASSK_BENCH_SAMPLING_PROBLEMS", "32"))
CONFIG = SamplingConfig(temperature=1.0, top_p=1.0, max_tokens=256, chunk=16)


def test_sample_stage_vs_one_generate(benchmark: Any, tmp_path: Path) -> None:
    llm = make_llm("smollm2-135m")
    plan = plan_requests(arithmetic(PROBLEMS, seed=0), 16, CONFIG, lambda pid: set())
    start = time.perf_counter()
    raw = generate_requests(llm, plan, CONFIG)
    peer = time.perf_counter() - start
    runs = iter(range(100))

    def stage() -> None:
        commands.sample(tmp_path / f"run{next(runs)}", model="smollm2-135m", problems=f"arith:{PROBLEMS}", n=16,
                        sampling=CONFIG, llm=llm)

    benchmark.pedantic(stage, rounds=1, iterations=1)
    ours = own_time(benchmark)
    benchmark.extra_info.update(samples=len(raw), generate_s=peer, ratio_to_generate=ours / peer)
    assert ours <= 1.05 * peer, f"{ours / peer:.2f}x one llm.generate"
