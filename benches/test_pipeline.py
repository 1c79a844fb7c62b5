"""The pipeline at a million samples (PASSK_BENCH_PROBLEMS x PASSK_BENCH_SAMPLES, default 1,000 x
1,000, 32-token responses, shards of 1,000 rows): a 256-sample write against the same write on an
empty run, `passk counts`, planning sample (a resumed, complete run), verify and score against the
same plans on a run of 2,000 samples, and `passk verify` and `passk score` against the same work on
that small run, each measured in one run. Time and peak RSS of the commands are taken in a fresh subprocess (its own
``getrusage(RUSAGE_SELF).ru_maxrss``), so nothing of this process counts."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from benches.conftest import measure_child, own_time
from benches.synthetic import make_run
from passkcore.pipeline.run import shard_files
from passkcore.pipeline.store import SampleStore

PROBLEMS = int(os.environ.get("PASSK_BENCH_PROBLEMS", "1000"))
SAMPLES = int(os.environ.get("PASSK_BENCH_SAMPLES", "1000"))
UNSCORED = 256  # one score item: all else in the big run is scored already
GIB = 2**30


@pytest.fixture(scope="module")
def big_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("big") / "run", PROBLEMS, SAMPLES, scores_except=UNSCORED).root


def _rows(start: int) -> list[dict[str, Any]]:
    return [{"model": "m", "problem_id": "new", "sample_index": start + i, "seed": 0,
             "prompt_token_ids": list(range(16)), "response_token_ids": list(range(32)), "response": "x",
             "finish_reason": "stop"} for i in range(256)]


def _write_times(store: SampleStore, rounds: int) -> tuple[float, list[list[dict[str, Any]]]]:
    batches = [_rows(1_000_000 + 256 * r) for r in range(rounds)]
    best = float("inf")
    for rows in batches:
        start = time.perf_counter()
        assert store.write_samples(rows) == 256
        best = min(best, time.perf_counter() - start)
    return best, batches


_PLANS = {
    "verify": "from passkcore.pipeline.stages import VerifyStage\nassert VerifyStage(sys.argv[1]).plan() == []",
    "score": "from passkcore.pipeline.stages import ScoreStage\n"
             "assert sum(i['rows'] for i in ScoreStage(sys.argv[1]).plan()) == int(sys.argv[3])",
    "sample": "from passkcore.pipeline.stages import SampleStage\nfrom passkcore.sampling import SamplingConfig\n"
              "stage = SampleStage(sys.argv[1], 'm', 'synthetic', int(sys.argv[2]), SamplingConfig(chunk=16))\n"
              "assert stage.plan() == []",
}


def test_counts_plans_and_score_at_a_million(benchmark: Any, big_run: Path, tmp_path: Path) -> None:
    """Every stage's plan on the big run against the same plan on a run of 2,000 samples, each in a
    fresh process: what a stored key costs while planning (<= 32 bytes) and <= 1.1x the small run's
    plan; `passk verify` and `passk score` with the same work left (1,000 samples to verify, 256 to
    score): <= 1.1x the small run's peak."""
    small = make_run(tmp_path / "small", 20, 100, scores_except=UNSCORED).root
    counts = measure_child("from passkcore.cli import main\n"
                      "assert main(['counts', sys.argv[1], '--out', sys.argv[2]]) == 0", str(big_run),
                      str(tmp_path / "counts.parquet"))
    extra: dict[str, float] = {}
    for stage, code in _PLANS.items():
        big = measure_child(code, str(big_run), str(SAMPLES), str(UNSCORED))
        little = measure_child(code, str(small), "100", str(UNSCORED))
        per_key = (big["rss"] - little["rss"]) / (PROBLEMS * SAMPLES - 2000)
        extra.update({f"plan_{stage}_rss_mib": big["rss"] / 2**20, f"plan_{stage}_small_run_rss_mib": little["rss"] / 2**20,
                      f"plan_{stage}_s": big["s"], f"plan_{stage}_bytes_per_key": per_key})
        assert per_key <= 32, f"{stage}: {per_key:.1f} bytes a stored key while planning"
        assert big["rss"] <= 1.1 * little["rss"], f"{stage}: {big['rss'] / little['rss']:.3f}x the small run's plan"
    # `passk verify` with one verdict shard (1,000 samples) taken away from each run.
    for run in (big_run, small):
        shard_files(run / "verdicts" / "m")[-1].unlink()
    verify_code = "from passkcore.cli import main\nassert main(['verify', sys.argv[1], '--workers', '2']) == 0"
    verify, verify_small = measure_child(verify_code, str(big_run)), measure_child(verify_code, str(small))
    # `passk score`: plans over the whole run, then scores the one item left (256 rows of 48 tokens).
    score_code = "from passkcore.cli import main\nassert main(['score', sys.argv[1]]) == 0"
    score = benchmark.pedantic(lambda: measure_child(score_code, str(big_run)), rounds=1, iterations=1)
    score_small = measure_child(score_code, str(small))
    benchmark.extra_info.update(samples=PROBLEMS * SAMPLES, counts_s=counts["s"], counts_rss_mib=counts["rss"] / 2**20,
                                verify_s=verify["s"], verify_rss_mib=verify["rss"] / 2**20,
                                verify_small_run_rss_mib=verify_small["rss"] / 2**20,
                                score_s=score["s"], score_rss_mib=score["rss"] / 2**20,
                                score_small_run_rss_mib=score_small["rss"] / 2**20, **extra)
    assert counts["s"] < 30 and counts["rss"] < GIB
    assert verify["rss"] <= 1.1 * verify_small["rss"], (verify["rss"], verify_small["rss"])
    assert score["rss"] <= 1.1 * score_small["rss"], (score["rss"], score_small["rss"])


# Last: it adds unverified samples to the shared run.
def test_write_on_a_million_sample_run(benchmark: Any, big_run: Path, tmp_path: Path) -> None:
    store = SampleStore(big_run)
    start = time.perf_counter()
    store.write_samples(_rows(0))  # the first write of an opened run reads every shard's key columns once
    cold = time.perf_counter() - start
    counter = iter(range(1, 10_000))
    benchmark.pedantic(lambda: store.write_samples(_rows(256 * next(counter))), rounds=20, iterations=1)
    ours = own_time(benchmark)
    empty, _ = _write_times(SampleStore.create(tmp_path / "empty", {"spec": "t"}), 20)
    benchmark.extra_info.update(samples=PROBLEMS * SAMPLES, empty_run_s=empty, ratio_to_empty=ours / empty,
                                first_write_s=cold)
    assert ours <= 2 * empty, f"{ours / empty:.2f}x an empty run's write"


def test_score_peak_rss_on_a_100k_sample_run(benchmark: Any, tmp_path: Path) -> None:
    """`passk score` on 100 x 1,000 samples (128-token responses), one item of 256 rows left to score
    (35 batches of the packed 4,096-token budget would hold the same memory): peak RSS is SmolLM2's
    fp32 weights (513 MiB, mapped from safetensors), torch + transformers (~470 MiB of modules), the
    numba head and one batch, under 1.5 GiB."""
    run = make_run(tmp_path / "run", 100, 1000, tokens=128, scores_except=UNSCORED).root
    score_code = "from passkcore.cli import main\nassert main(['score', sys.argv[1]]) == 0"
    score = benchmark.pedantic(lambda: measure_child(score_code, str(run)), rounds=1, iterations=1)
    benchmark.extra_info.update(samples=100_000, score_s=score["s"], score_rss_mib=score["rss"] / 2**20)
    assert score["rss"] < 1.5 * GIB, f"peak RSS {score['rss'] / 2**20:.0f} MiB"
