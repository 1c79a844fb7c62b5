"""Peak memory and wall time of `passk score` per backend, the whole process tree counted.

Why the one scoring default is what it is (passkcore.scoring.DEFAULT_BACKEND): a synthetic run (benches/
synthetic.py: 20 problems x 100 samples, 128-token responses) with 32 samples left to score,
scored by `passk score RUN --backend B` in a fresh process per backend. Memory: the largest sum of the
RSS of the command and all its descendants (vLLM's engine core is a child process), sampled every
0.1 s with psutil. Usage: python tools/measure_score_backends.py [BACKEND ...] (default fused vllm_fused);
PASSK_MEASURE_TIMEOUT_S bounds each command (default 3600).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benches.conftest import tree_rss  # noqa: E402  (the repository's benches, not an installed package)
from benches.synthetic import make_run  # noqa: E402


def measure(run: Path, backend: str, timeout_s: float) -> dict[str, object]:
    """The figures of one `passk score`; past ``timeout_s`` the tree is killed and the peak so far is
    reported (a lower bound) with ``"finished": False``."""
    cmd = [sys.executable, "-m", "passkcore.cli", "score", str(run), "--backend", backend]
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    proc, peak, tree = psutil.Process(child.pid), 0, set()
    while child.poll() is None and time.perf_counter() - start < timeout_s:
        tree.update(p.pid for p in proc.children(recursive=True))
        peak = max(peak, tree_rss(proc))
        time.sleep(0.1)
    finished = child.poll() is not None
    if not finished:
        for pid in tree | {child.pid}:  # this command's own tree only, by the ids seen
            try:
                psutil.Process(pid).kill()
            except psutil.Error:
                pass
    out = child.communicate()[0] if finished else ""
    return {"backend": backend, "finished": finished and child.returncode == 0,
            "seconds": round(time.perf_counter() - start, 1), "peak_tree_rss_mib": peak >> 20,
            "scored": out.strip().splitlines()[-1] if out.strip() else None}


def main(backends: list[str], timeout_s: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            run = make_run(Path(tmp) / backend, 20, 100, tokens=128, scores_except=32).root
            print(json.dumps(measure(run, backend, timeout_s)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["fused", "vllm_fused"], float(os.environ.get("PASSK_MEASURE_TIMEOUT_S", "3600")))
