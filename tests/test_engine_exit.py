"""A process that used vLLM engines exits 0 however the engines are dropped: ``del`` with no
``close()``, or nothing at all (left to interpreter exit). A ``with`` block shuts its engine down
(``tests/test_scoring.py::test_vllm_fused_backend``), and every ``passk`` subprocess of the suite
closes its engines and must exit 0.

An engine left to the garbage collector at exit used to abort its process after the work was done
("terminate called without an active exception", SIGABRT, exit 134: 4 of 7 runs of a script that
dropped two Scorers with ``del``). The process here owns both kinds of engine ``make_llm`` starts, in
both of its layouts on a CPU (``passkcore.sampling.engine_layout``): the pooling one
(``Scorer(backend="vllm_fused")``), started first, runs inside the process and is dropped with
``del``; the generating one that samples and that ``Scorer(backend="vllm")`` reads prompt log-probs
from starts after the fused head loaded numba, so it runs in vLLM's own processes, and is left to
interpreter exit. One process for both ways of dropping (two took 2 x 72 s of the suite on 2 cores);
the suite runs on every commit, so a crash at the rate measured before the fix would not stay hidden
long."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = r'''
import sys

from passkcore.models import load_tokenizer
from passkcore.scoring import Scorer


def rows():
    tokenizer = load_tokenizer("smollm2-135m")
    return [{"model": "m", "problem_id": f"p{i}", "sample_index": 0,
             "prompt_token_ids": tokenizer.encode(f"What is {i} + {i}?"),
             "response_token_ids": tokenizer.encode(f" The answer is {2 * i}.")} for i in range(32)]


def main():
    data = rows()
    pooled = Scorer(backend="vllm_fused")
    first = pooled.score(data)
    inside = pooled._llm.llm_engine.engine_core.__class__.__name__
    plain = Scorer(backend="vllm")
    second = plain.score(data)
    separate = plain._llm.llm_engine.engine_core.__class__.__name__
    assert [t.column("status").to_pylist().count("ok") for t in (first, second)] == [32, 32]
    print("scored", inside, separate, flush=True)
    del pooled  # no close(); plain is still referenced when the interpreter exits


if __name__ == "__main__":
    main()
'''


@pytest.mark.slow
def test_a_process_that_dropped_its_engines_exits_0(tmp_path: Path) -> None:
    script = tmp_path / "engines.py"  # a file: vLLM's spawned engine processes re-import the main module
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=900)
    assert "scored" in done.stdout, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("scored"))
    # A GPU keeps vLLM's engine process for both (passkcore.sampling.engine_layout)
    first = "SyncMPClient" if torch.cuda.is_available() else "InprocClient"
    assert line.split()[1:] == [first, "SyncMPClient"], line
    assert "terminate called" not in done.stderr, done.stderr[-3000:]
    assert done.returncode == 0, (done.returncode, done.stderr[-3000:])
