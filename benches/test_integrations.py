"""verl's validation metrics: passkcore.integrations.verl against verl's own process_validation_metrics
(1,000 bootstrap draws per prompt, k and metric, in Python loops), same input, same run."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import verl.trainer.ppo.metric_utils as metric_utils

from benches.conftest import own_time, peer_time
from passkcore.integrations.verl import process_validation_metrics


def validation_batch(prompts: int, n: int, seed: int = 0) -> tuple[list[str], list[str], dict[str, list[Any]]]:
    """A verl validation batch: two data sources, n responses per prompt, two variables (0/1 ``acc`` and a
    real-valued ``score``) and a ``pred`` answer per response (the correct one, or one of three wrong ones)."""
    rng = np.random.default_rng(seed)
    size = prompts * n
    sources = np.where(np.repeat(np.arange(prompts), n) % 4 == 0, "math", "gsm8k").tolist()
    uids = np.repeat(np.arange(prompts), n).astype(str).tolist()
    acc = rng.random(size) < np.repeat(rng.random(prompts), n)
    pred = np.where(acc, "42", rng.integers(0, 3, size).astype(str)).tolist()
    score = (acc + rng.normal(0.0, 0.1, size)).tolist()
    return sources, uids, {"acc": acc.astype(float).tolist(), "score": score, "pred": pred}


def test_verl_1000_prompts_n16_vs_verl(benchmark: Any) -> None:
    """1,000 prompts x n = 16 x 2 variables, with maj@k: target >= 100x verl's own function."""
    sources, uids, infos = validation_batch(1000, 16)
    ours = benchmark(lambda: process_validation_metrics(sources, uids, infos))
    t_ours = own_time(benchmark)
    theirs = {}
    t_verl = peer_time(lambda: theirs.update(metric_utils.process_validation_metrics(sources, uids, infos)), repeats=1)
    benchmark.extra_info.update(verl_s=t_verl, ratio_vs_verl=t_verl / t_ours)
    for src in theirs:  # same keys, values within verl's bootstrap noise of the exact ones
        for var in theirs[src]:
            assert set(ours[src][var]) == set(theirs[src][var])
            assert abs(ours[src][var]["mean@16"] - theirs[src][var]["mean@16"]) < 1e-12
    assert t_verl / t_ours >= 100, f"only {t_verl / t_ours:.0f}x verl"


def test_verl_10000_prompts_n64(benchmark: Any) -> None:
    """10,000 prompts x n = 64 x 2 variables (640,000 responses), passkcore alone; verl's time is
    extrapolated from 50 prompts of the same batch (its cost is linear in prompts), and the bound is
    2 s per 100,000 responses."""
    sources, uids, infos = validation_batch(10_000, 64)
    out = benchmark.pedantic(lambda: process_validation_metrics(sources, uids, infos), rounds=2, iterations=1)
    t_ours = own_time(benchmark)
    cut = 50 * 64
    start = time.perf_counter()
    metric_utils.process_validation_metrics(sources[:cut], uids[:cut], {k: v[:cut] for k, v in infos.items()})
    t_verl = (time.perf_counter() - start) * 10_000 / 50
    benchmark.extra_info.update(verl_extrapolated_s=t_verl, ratio_vs_verl_extrapolated=t_verl / t_ours)
    assert set(out) == {"gsm8k", "math"} and "maj@64/mean" in out["gsm8k"]["acc"]
    assert t_ours < 2.0 * 640_000 / 100_000, f"{t_ours:.1f} s for 640,000 responses"
