"""Processes that used vLLM engines exit 0 however the engines are dropped: ``del`` with no
``close()``, a ``with`` block, or nothing at all (left to interpreter exit).

An engine left to the garbage collector at exit used to abort its process after the work was done
("terminate called without an active exception", SIGABRT, exit 134: 4 of 7 runs of the ``del``
script). Each process here owns three engines: a sampler (``make_llm``), the pooling scorer
(``Scorer(backend="vllm_fused")``) and ``Scorer(backend="vllm")``. One process per way of dropping
them: each costs ~2 minutes of the suite on 2 cores (three engines start), and the suite runs on
every commit, so a crash at the rate measured before the fix (4 in 7) would not stay hidden long."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = r'''
import sys

from passkcore.models import load_tokenizer
from passkcore.sampling import make_llm
from passkcore.scoring import Scorer


def rows():
    tokenizer = load_tokenizer("smollm2-135m")
    return [{"model": "m", "problem_id": f"p{i}", "sample_index": 0,
             "prompt_token_ids": tokenizer.encode(f"What is {i} + {i}?"),
             "response_token_ids": tokenizer.encode(f" The answer is {2 * i}.")} for i in range(32)]


def main(mode):
    from vllm import SamplingParams

    data = rows()
    llm = make_llm("smollm2-135m", max_model_len=512)
    out = llm.generate([{"prompt_token_ids": data[0]["prompt_token_ids"]}], SamplingParams(max_tokens=4),
                       use_tqdm=False)
    assert out[0].outputs[0].token_ids
    if mode == "with":
        with Scorer(backend="vllm_fused") as pooled, Scorer(backend="vllm") as plain:
            scored = [pooled.score(data), plain.score(data)]
        assert pooled._llm is None and plain._llm is None
    else:
        pooled, plain = Scorer(backend="vllm_fused"), Scorer(backend="vllm")
        scored = [pooled.score(data), plain.score(data)]
    assert [t.column("status").to_pylist().count("ok") for t in scored] == [32, 32]
    print("scored", flush=True)
    if mode == "del":
        del llm, pooled, plain
    elif mode == "with":
        del llm
    # "exit": everything is still referenced when the interpreter exits


if __name__ == "__main__":
    main(sys.argv[1])
'''


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["del", "exit", "with"])
def test_a_process_that_dropped_its_engines_exits_0(mode: str, tmp_path: Path) -> None:
    script = tmp_path / "engines.py"  # a file: vLLM's spawned engine processes re-import the main module
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True, timeout=900)
    assert "scored" in done.stdout, done.stderr[-3000:]
    assert "terminate called" not in done.stderr, done.stderr[-3000:]
    assert done.returncode == 0, (done.returncode, done.stderr[-3000:])
