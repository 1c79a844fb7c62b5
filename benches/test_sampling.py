"""Sampling on the embedded model: the sample stage (vLLM's step loop, shards stored as items finish)
against one raw ``llm.generate`` over the same requests and seeds, on the same engine, in one run
(32 problems x n = 16, temperature 1.0, max 256 tokens; PASSK_BENCH_SAMPLING_PROBLEMS resizes it,
PASSK_BENCH_SAMPLING_ROUNDS sets the A/B rounds). Rounds alternate generate / stage so that load from
other processes drifts onto both sides; each side's best round counts. Then a 10x longer run (10x the
problems, max 32 tokens to fit the time) watches the driver's RSS after every stored shard: flat.
Minutes of CPU."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from benches.conftest import own_time
from passkcore.pipeline import commands
from passkcore.problems import arithmetic
from passkcore.sampling import SamplingConfig, generate_requests, make_llm, plan_requests

PROBLEMS = int(os.environ.get("PASSK_BENCH_SAMPLING_PROBLEMS", "32"))
ROUNDS = int(os.environ.get("PASSK_BENCH_SAMPLING_ROUNDS", "2"))
CONFIG = SamplingConfig(temperature=1.0, top_p=1.0, max_tokens=256, chunk=16)
LONG = SamplingConfig(temperature=1.0, top_p=1.0, max_tokens=32, chunk=16)


def _rss_mib() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) / 1024 for line in fh if line.startswith("VmRSS:"))


def test_sample_stage_vs_one_generate(benchmark: Any, tmp_path: Path) -> None:
    llm = make_llm("smollm2-135m")
    plan = plan_requests(arithmetic(PROBLEMS, seed=0), 16, CONFIG, lambda pid: set())
    runs = iter(range(100))
    peer, raw = float("inf"), []
    last = tmp_path

    def stage() -> None:
        nonlocal last
        last = tmp_path / f"run{next(runs)}"
        commands.sample(last, model="smollm2-135m", problems=f"arith:{PROBLEMS}", n=16, sampling=CONFIG, llm=llm)

    def generate() -> None:
        nonlocal peer, raw
        start = time.perf_counter()
        raw = generate_requests(llm, plan, CONFIG)
        peer = min(peer, time.perf_counter() - start)

    benchmark.pedantic(stage, rounds=ROUNDS, iterations=1, setup=generate)  # generate, stage, generate, stage...
    ours = own_time(benchmark)
    stored = sum(pq.read_metadata(p).num_rows for p in (last / "samples").rglob("*.parquet"))
    assert stored == len(raw) == PROBLEMS * 16

    # 10x the problems: the driver's RSS after each stored shard, from the end of the first tenth on.
    seen: list[tuple[int, float]] = []
    commands.sample(tmp_path / "long", model="smollm2-135m", problems=f"arith:{10 * PROBLEMS}", n=16, sampling=LONG,
                    llm=llm, progress=lambda done, total: seen.append((done, _rss_mib())))
    total = 10 * PROBLEMS * 16
    after_tenth = [rss for done, rss in seen if done >= total // 10]
    growth = max(after_tenth) - after_tenth[0]
    benchmark.extra_info.update(samples=len(raw), generate_s=peer, stage_s=ours, ratio_to_generate=ours / peer,
                                long_run_samples=total, long_run_rss_growth_mib=growth,
                                long_run_rss_mib=max(after_tenth))
    assert ours <= 1.05 * peer, f"{ours / peer:.2f}x one llm.generate"
    assert growth < 64, f"the driver grew {growth:.0f} MiB over the last nine tenths of a {total}-sample run"
