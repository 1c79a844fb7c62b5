"""Peak memory and wall time of `passk score` per backend, the whole process tree counted.

Why the one scoring default is what it is (passkcore.scoring.DEFAULT_BACKEND): a synthetic run (benches/
synthetic.py: 20 problems x 100 samples, 128-token responses) with 32 samples left to score,
scored by `passk score RUN --backend B` in a fresh process per backend. Memory: the largest sum of the
RSS of the command and all its descendants (vLLM's engine core is a child process), sampled every
0.1 s with psutil. Usage: python tools/measure_score_backends.py [BACKEND ...] (default fused vllm_fused).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benches.synthetic import make_run  # noqa: E402  (the repository's benches, not an installed package)


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def measure(run: Path, backend: str) -> dict[str, object]:
    cmd = [sys.executable, "-m", "passkcore.cli", "score", str(run), "--backend", backend]
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc, peak = psutil.Process(child.pid), 0
    while child.poll() is None:
        peak = max(peak, tree_rss(proc))
        time.sleep(0.1)
    out, err = child.communicate()
    if child.returncode != 0:
        raise RuntimeError(err[-3000:])
    return {"backend": backend, "seconds": round(time.perf_counter() - start, 1), "peak_tree_rss_mib": peak >> 20,
            "scored": out.strip().splitlines()[-1]}


def main(backends: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            run = make_run(Path(tmp) / backend, 20, 100, tokens=128, scores_except=32).root
            print(json.dumps(measure(run, backend)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["fused", "vllm_fused"])
