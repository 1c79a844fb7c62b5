"""vLLM engine layout on a CPU (``passkcore.sampling.engine_layout``): SmolLM2's engine inside the
calling process against vLLM's own engine-core and worker processes, each in a fresh interpreter:
start, 64 prompts x 4 samples of <= 128 tokens, shut down. Rounds alternate the two layouts so that
load from other processes drifts onto both; each side's best round counts. About 3 minutes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from benches.conftest import ROOT, own_time

ROUNDS = int(os.environ.get("PASSK_BENCH_ENGINE_ROUNDS", "2"))
CHILD = r'''
import json, sys, time


def main():
    from vllm import SamplingParams

    from passkcore.sampling import make_llm, shutdown_engine

    start = time.perf_counter()
    llm = make_llm("smollm2-135m", dtype="float32")
    started = time.perf_counter()
    outs = llm.generate([f"Write a short story about the number {i}." for i in range(64)],
                        SamplingParams(max_tokens=128, temperature=1.0, seed=0, n=4), use_tqdm=False)
    generated = time.perf_counter()
    shutdown_engine(llm)
    stopped = time.perf_counter()
    kind = llm.llm_engine.engine_core.__class__.__name__
    tokens = sum(len(c.token_ids) for o in outs for c in o.outputs)
    with open(sys.argv[1], "w") as fh:
        json.dump({"start_s": started - start, "tokens_per_s": tokens / (generated - started),
                   "stop_s": stopped - generated, "client": kind}, fh)


if __name__ == "__main__":
    main()
'''


def _run(tmp_path: Path, separate: bool, round_: int) -> dict[str, Any]:
    script, out = tmp_path / "engine.py", tmp_path / f"{separate}-{round_}.json"
    script.write_text(CHILD)
    env = {**os.environ, "VLLM_LOGGING_LEVEL": "ERROR"}
    env.pop("VLLM_ENABLE_V1_MULTIPROCESSING", None)
    if separate:
        env["VLLM_ENABLE_V1_MULTIPROCESSING"] = "1"  # the caller's choice: vLLM's own processes
    done = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(out.read_text()))


def test_engine_inside_the_process_vs_its_own_processes(benchmark: Any, tmp_path: Path) -> None:
    inside: list[dict[str, Any]] = []
    separate: list[dict[str, Any]] = []
    rounds = iter(range(2 * ROUNDS))
    # separate, inside, separate, inside...: the benchmark times the whole inside run, its child included
    benchmark.pedantic(lambda: inside.append(_run(tmp_path, False, next(rounds))), rounds=ROUNDS, iterations=1,
                       setup=lambda: separate.append(_run(tmp_path, True, next(rounds))))
    own_time(benchmark)  # skips where benchmarks are disabled
    assert {x["client"] for x in inside} == {"InprocClient"} and {x["client"] for x in separate} == {"SyncMPClient"}
    best = {name: {key: (max if key == "tokens_per_s" else min)(x[key] for x in runs)
                   for key in ("start_s", "tokens_per_s", "stop_s")}
            for name, runs in (("inside", inside), ("separate", separate))}
    benchmark.extra_info.update(
        inside_start_s=best["inside"]["start_s"], separate_start_s=best["separate"]["start_s"],
        inside_stop_s=best["inside"]["stop_s"], separate_stop_s=best["separate"]["stop_s"],
        inside_tokens_per_s=best["inside"]["tokens_per_s"], separate_tokens_per_s=best["separate"]["tokens_per_s"],
        start_ratio=best["inside"]["start_s"] / best["separate"]["start_s"],
        speed_ratio=best["inside"]["tokens_per_s"] / best["separate"]["tokens_per_s"])
    assert best["inside"]["start_s"] <= 0.6 * best["separate"]["start_s"], best
    assert best["inside"]["tokens_per_s"] >= 0.9 * best["separate"]["tokens_per_s"], best
