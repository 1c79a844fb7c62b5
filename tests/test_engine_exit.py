"""Processes that used vLLM engines exit 0 however the engines are dropped: ``del`` with no
``close()``, or nothing at all (left to interpreter exit). A ``with`` block shuts its engine down
(``tests/test_scoring.py::test_vllm_fused_backend``), and every ``passk`` subprocess of the suite
closes its engines and must exit 0.

An engine left to the garbage collector at exit used to abort its process after the work was done
("terminate called without an active exception", SIGABRT, exit 134: 4 of 7 runs of a script that
dropped two Scorers with ``del``). Each process here owns both kinds of engine ``make_llm`` starts: the
pooling one (``Scorer(backend="vllm_fused")``) and the generating one that samples and that
``Scorer(backend="vllm")`` reads prompt log-probs from. One process per way of dropping them (119 s
for one on an idle 2-core machine); the suite runs on every commit, so a crash at the rate measured
before the fix would not stay hidden long."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = r'''
import sys

from passkcore.models import load_tokenizer
from passkcore.scoring import Scorer


def rows():
    tokenizer = load_tokenizer("smollm2-135m")
    return [{"model": "m", "problem_id": f"p{i}", "sample_index": 0,
             "prompt_token_ids": tokenizer.encode(f"What is {i} + {i}?"),
             "response_token_ids": tokenizer.encode(f" The answer is {2 * i}.")} for i in range(32)]


def main(mode):
    data = rows()
    pooled, plain = Scorer(backend="vllm_fused"), Scorer(backend="vllm")
    scored = [pooled.score(data), plain.score(data)]
    assert [t.column("status").to_pylist().count("ok") for t in scored] == [32, 32]
    print("scored", flush=True)
    if mode == "del":
        del pooled, plain
    # "exit": both still referenced when the interpreter exits


if __name__ == "__main__":
    main(sys.argv[1])
'''


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["del", "exit"])
def test_a_process_that_dropped_its_engines_exits_0(mode: str, tmp_path: Path) -> None:
    script = tmp_path / "engines.py"  # a file: vLLM's spawned engine processes re-import the main module
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True, timeout=900)
    assert "scored" in done.stdout, done.stderr[-3000:]
    assert "terminate called" not in done.stderr, done.stderr[-3000:]
    assert done.returncode == 0, (done.returncode, done.stderr[-3000:])
