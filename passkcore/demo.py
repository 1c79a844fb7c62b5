"""``make demo``: the whole RLVR-style study on the embedded SmolLM2-135M-Instruct, on CPU.

Two policies of one model, honestly labelled: ``base`` samples at temperature 1.0 and ``sharpened``
at 0.3. Sharpening the distribution is what the RLVR paper finds RL mostly does; the demo shows
whether the pass@k curves cross on this model. Steps: sample -> verify -> counts -> score (every
sample under the base policy, T = 1, and the sharpened one, T = 0.3, from one backbone pass) ->
report. Each step skips what is already stored, so an interrupted demo continues when re-run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

from passkcore._atomic import write_text_atomically
from passkcore.extras import require
from passkcore.problems import arithmetic, load_humaneval
from passkcore.scoring import DEFAULT_BACKEND

if TYPE_CHECKING:
    from passkcore.pipeline.executors import Cluster
    from passkcore.pipeline.store import SampleStore

# vLLM samples, math-verify and the sandbox verify, the fused head scores: every part of the study.
require("sampling", "kernels", "vllm", "verify", by=__name__)


def demo_problems(out: Path, arith: int, code: int, seed: int) -> Path:
    """The demo's problem set (seeded arithmetic + the first HumanEval problems) as a JSONL file."""
    problems = arithmetic(arith, seed=seed) + (load_humaneval(code) if code else [])
    path = out / "demo-problems.jsonl"
    lines = []
    for p in problems:
        row = {k: v for k, v in asdict(p).items() if v is not None and k != "kind"}
        lines.append(json.dumps(row, sort_keys=True))
    text = "\n".join(lines) + "\n"
    if not path.is_file() or path.read_text() != text:
        write_text_atomically(path, text)
    return path


def run_demo(out: Union[str, Path] = "runs/demo", *, arith: int = 16, code: int = 4, n: int = 16,
             base_temperature: float = 1.0, sharp_temperature: float = 0.3, max_tokens: int = 128, seed: int = 0,
             resamples: int = 2000, log: Callable[[str], None] = print,
             bar: Optional[Callable[[str, str], Any]] = None, score_backend: str = DEFAULT_BACKEND,
             cluster: Optional[Cluster] = None, dtype: str = "auto") -> tuple[Path, Path]:
    """Runs (or continues) every step and returns the report's HTML and JSON paths. Scoring runs on
    ``score_backend`` (``passkcore.scoring.DEFAULT_BACKEND`` by default, as ``passk score``), after the
    sampling engine is shut down, so at most one engine holds memory at a time. ``cluster`` runs
    the stages on Ray (vLLM replicas and Scorers in actor pools, verification in tasks): the same
    items and seeds, so the same store and report as in this process. ``dtype`` is the sampling
    engine's (``auto``: the run's recorded one, else this machine's default; see ``passk sample``)."""
    from passkcore.pipeline import commands
    from passkcore.report import write_report
    from passkcore.sampling import SamplingConfig, make_llm, shutdown_engine

    out = Path(out)
    problems = demo_problems(out, arith, code, seed)
    store = commands.open_sample_run(out, str(problems))  # opened once: every step below works on this store
    llm: Any = None
    llm_dtype = ""
    where = "" if cluster is None else " on Ray"
    for label, temperature in (("base", base_temperature), ("sharpened", sharp_temperature)):
        config = SamplingConfig(temperature=temperature, top_p=1.0, max_tokens=max_tokens, seed=seed, chunk=n)
        engine_dtype = commands.sample_dtype(store, label, dtype)
        if llm is not None and llm_dtype != engine_dtype:
            raise ValueError(f"dtype: the run sampled 'base' in {llm_dtype} and '{label}' in {engine_dtype}; "
                             "the demo samples both policies with one engine")
        if cluster is None and llm is None and not _complete(store, label, n):
            # One engine serves both policies; none when both are stored.
            llm, llm_dtype = make_llm("smollm2-135m", seed=seed, dtype=engine_dtype), engine_dtype
        log(f"[1/5] sampling '{label}' (temperature {temperature:g}, {engine_dtype}), n = {n}{where}")
        with _bar(bar, f"sampling {label}", "samples") as update:
            commands.sample(store, model="smollm2-135m", problems=str(problems), n=n, label=label, sampling=config,
                            llm=llm, cluster=cluster, progress=update, dtype=dtype)
    shutdown_engine(llm)
    del llm
    log(f"[2/5] verifying (math-verify; code in the bubblewrap sandbox){where}")
    with _bar(bar, "verifying", "samples") as update:
        commands.verify(store, options={"timeout_s": 10.0, "memory_mb": 1024, "math_extract": "fallback"}, cluster=cluster, progress=update)
    log("[3/5] counting")
    commands.write_counts(store, out / "counts.parquet")
    log(f"[4/5] scoring every sample under both policies (T = {base_temperature:g} and {sharp_temperature:g}){where}")
    with _bar(bar, "scoring", "samples") as update:
        commands.score(store, temperatures=(base_temperature, sharp_temperature), backend=score_backend,
                       cluster=cluster, progress=update)
    log("[5/5] report (paired bootstrap, coverage, histograms, perplexities)")
    return write_report(store, out / "report", base="base", resamples=resamples, seed=seed)


def _complete(store: SampleStore, label: str, n: int) -> bool:
    count = store.manifest.get("problems", {}).get("count", 0)
    return bool(count) and len(store.index("samples", label)) >= n * count


class _NoBar:
    def __enter__(self) -> Callable[[int, int], None]:
        return lambda done, total: None

    def __exit__(self, *exc: Any) -> None:
        return None


def _bar(bar: Optional[Callable[[str, str], Any]], description: str, unit: str) -> Any:
    return bar(description, unit) if bar else _NoBar()
