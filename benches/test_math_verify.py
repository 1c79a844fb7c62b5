"""Math verification throughput (samples/s per core): the killable worker pool against the design it
replaced (chunks of 64 in a spawned ProcessPoolExecutor, per-sample ITIMER_REAL), in the same run."""

from __future__ import annotations

import contextlib
import random
import signal
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any, Optional

import psutil

from benches.conftest import own_time, peer_time
from passkcore.problems import arithmetic
from passkcore.verify.math import VERIFIER, check_math
from passkcore.verify.math_pool import verify_math
from passkcore.verify.verdict import Verdict

SAMPLES = 512
CHUNK = 64  # the replaced design's chunk size


def demo_answers(count: int = SAMPLES, seed: int = 0) -> list[tuple[str, str]]:
    """(response, gold) pairs shaped like the demo's SmolLM2 answers to arithmetic problems (<= 128
    tokens): mostly a boxed final answer, some right, some wrong, some with no box or no answer."""
    rng = random.Random(seed)
    problems = arithmetic(64, seed)
    out = []
    for i in range(count):
        p = problems[i % len(problems)]
        gold = int(str(p.answer))
        said = gold if rng.random() < 0.6 else gold + rng.choice([-3, -1, 1, 2, 10])
        steps = f"{p.prompt.split('.')[0]}. Let's work it out step by step: {gold - 2} + 2 = {said}."
        form = rng.random()
        if form < 0.7:
            response = f"{steps} So the final answer is $\\boxed{{{said}}}$."
        elif form < 0.9:
            response = f"{steps} The answer is {said}."
        else:
            response = "I am not sure how to solve this problem, sorry."
        out.append((response, str(gold)))
    return out


class _SampleTimeout(Exception):
    pass


def _on_alarm(signum: int, frame: Any) -> None:
    raise _SampleTimeout()


def baseline_chunk(items: list[tuple[str, str]], timeout_s: float) -> list[tuple[bool, str, Optional[str], str]]:
    """The replaced design's pool task: a chunk of samples, each under an ITIMER_REAL alarm."""
    signal.signal(signal.SIGALRM, _on_alarm)
    out = []
    for response, gold in items:
        signal.setitimer(signal.ITIMER_REAL, timeout_s)
        try:
            v = check_math(response, gold)
            out.append((v.passed, v.reason, v.extracted, ""))
        except _SampleTimeout:
            out.append((False, "timeout", None, f"over {timeout_s:g} s"))
        except Exception as exc:  # noqa: BLE001 - as the replaced design did
            out.append((False, "crashed", None, f"{type(exc).__name__}: {exc}"[:300]))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    return out


def baseline_verify(pool: ProcessPoolExecutor, items: list[tuple[str, str]], timeout_s: float) -> list[Verdict]:
    chunks = [items[i:i + CHUNK] for i in range(0, len(items), CHUNK)]
    futures = [pool.submit(baseline_chunk, c, timeout_s) for c in chunks]
    return [Verdict(p, r, e, VERIFIER, d) for f in futures for (p, r, e, d) in f.result(timeout=CHUNK * timeout_s + 60.0)]


def baseline_fresh(items: list[tuple[str, str]], timeout_s: float) -> list[Verdict]:
    """The replaced design as verify_rows ran it: a fresh spawned pool per call."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return baseline_verify(pool, items, timeout_s)


def cpu_seconds(fn: Callable[[], Any]) -> float:
    """CPU seconds ``fn`` costs this process and every process under it (workers, forkserver): the
    per-core cost, whatever else the machine runs."""
    me = psutil.Process()

    def total() -> float:
        spent = time.process_time()
        for child in me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                spent += sum(child.cpu_times()[:2])
        return spent

    before = total()
    fn()
    return total() - before


def test_math_throughput_vs_chunked_pool(benchmark: Any) -> None:
    """One core each, both warm (imports done, caches of parsed answers filled by an earlier pass):
    ours reuses its idle worker, the replaced pool is kept open. Target: at least 0.8x its samples
    per CPU second (samples/s per core, whatever else the machine runs); wall clock at least 0.6x.
    Also measured, not asserted: the replaced design as verify_rows called it, a fresh spawned pool
    per call (what each 256-row batch of verify_run paid)."""
    items = demo_answers()

    def ours() -> list[Verdict]:
        return verify_math(items, workers=1, timeout_s=10.0, memory_mb=1024)

    verdicts = benchmark.pedantic(ours, rounds=3, warmup_rounds=1)
    t_ours = own_time(benchmark)
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        reasons = [v.reason for v in baseline_verify(pool, items, 10.0)]  # spawn, import, caches: untimed
        t_base = cpu_base = cpu_ours = float("inf")
        # Alternated, so that a burst of load from other processes hits both sides alike. The idle
        # side's processes add nothing to the other's CPU seconds.
        for _ in range(3):
            t_base = min(t_base, peer_time(lambda: baseline_verify(pool, items, 10.0), repeats=1))
            t_ours = min(t_ours, peer_time(ours, repeats=1))
            cpu_base = min(cpu_base, cpu_seconds(lambda: baseline_verify(pool, items, 10.0)))
            cpu_ours = min(cpu_ours, cpu_seconds(ours))
    t_fresh = peer_time(lambda: baseline_fresh(items, 10.0), repeats=1)
    assert [v.reason for v in verdicts] == reasons
    assert {"passed", "wrong_answer", "no_answer"} <= set(reasons)
    ratio, cpu_ratio = t_base / t_ours, cpu_base / cpu_ours
    benchmark.extra_info.update(ours_ms_per_sample=1e3 * t_ours / len(items),
                                chunked_pool_warm_ms_per_sample=1e3 * t_base / len(items),
                                chunked_pool_per_call_ms_per_sample=1e3 * t_fresh / len(items),
                                ours_cpu_ms_per_sample=1e3 * cpu_ours / len(items),
                                chunked_pool_cpu_ms_per_sample=1e3 * cpu_base / len(items),
                                speed_ratio_vs_warm_pool=ratio, cpu_ratio_vs_warm_pool=cpu_ratio)
    assert cpu_ratio >= 0.8, f"{cpu_ratio:.2f}x the chunked pool's samples per CPU second"
    # Wall clock on a shared 2-core machine moved by +-20% between runs (0.77x to 1.09x measured):
    # a looser sanity bound.
    assert ratio >= 0.6, f"{ratio:.2f}x the chunked pool's samples/s (wall clock)"
