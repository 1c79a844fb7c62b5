"""``passk sample``, ``verify``, ``score``, ``counts``, ``ppl``, ``report`` and ``demo``: the stages that build
a run directory, and what is read from it."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from passkcore.analysis import DEFAULT_BOOTSTRAP, DEFAULT_FORECAST_RESAMPLES, DEFAULT_INTERVAL
from passkcore.cli.common import (
    NAMES,
    NUMBERS,
    add_backend,
    add_list,
    add_problem_fields,
    add_ray,
    add_verbosity,
    cluster_of,
    print_stage_stats,
    problem_fields,
    progress_bar,
)
from passkcore.numbers.stats import TARGETS
from passkcore.sampling import DTYPES, SamplingConfig
from passkcore.scoring import SCORE_DTYPES


def cmd_sample(args: argparse.Namespace) -> int:
    from passkcore.pipeline import commands

    config = SamplingConfig(temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens,
                            seed=args.seed, chunk=args.chunk)
    cluster = cluster_of(args)
    with progress_bar(f"sampling {args.label or args.model}", "samples") as update:
        store, stats = commands.sample(args.out, model=args.model, problems=args.problems, n=args.n, label=args.label,
                                       limit=args.limit, sampling=config, batch_requests=args.batch_requests,
                                       tensor_parallel_size=args.tensor_parallel_size, window=args.window,
                                       template=args.template, fields=problem_fields(args), cluster=cluster,
                                       progress=update, dtype=args.dtype)
    if cluster is not None:
        print_stage_stats(stats)
    print(f"samples stored in {store.root}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from passkcore.pipeline import commands

    cluster = cluster_of(args)
    with progress_bar("verifying", "samples") as update:
        store, stats = commands.verify(args.run, options={"timeout_s": args.timeout, "memory_mb": args.memory_mb,
                                                                   "math_extract": args.math_extract,
                                                                   "allow_packages": args.allow_packages or []},
                                       workers=args.workers, cluster=cluster, progress=update)
    if cluster is not None:
        print_stage_stats(stats)
    counted = store.value_counts("verdicts", store.models, "reason")
    print("verdicts: " + ", ".join(f"{reason} {n}" for reason, n in counted.items()))
    return 0


def cmd_counts(args: argparse.Namespace) -> int:
    from passkcore.pipeline.commands import write_counts

    if args.ray is not None:
        print("passk counts: --ray is not needed and is ignored: counts are an Arrow group-by of key and verdict "
              "columns on this machine (1M samples: ~2.3 s)", file=sys.stderr)
    table = write_counts(args.run, args.out)
    print(f"{table.num_rows} (problem, model) counts written to {args.out}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from passkcore.pipeline import commands

    cluster = cluster_of(args)
    with progress_bar(f"scoring under {args.scorer} ({args.backend})", "samples") as update:
        store, labels, stats = commands.score(args.run, scorer=args.scorer, backend=args.backend,
                                              temperatures=args.temperature or [1.0], cluster=cluster, progress=update,
                                              dtype=args.dtype)
    if cluster is not None:
        print_stage_stats(stats)
    if args.out:
        commands.export_scores(store, labels, args.out)
    statuses = store.value_counts("scores", labels, "status")
    print(f"{sum(statuses.values())} samples scored: " + ", ".join(f"{s} {n}" for s, n in statuses.items()))
    return 0


def cmd_ppl(args: argparse.Namespace) -> int:
    import json

    from passkcore.analysis import ppl_summary
    from passkcore.pipeline.store import SampleStore

    summary = ppl_summary(SampleStore(args.run).scores(columns=["model", "scorer", "ppl", "status"]))
    if not summary:
        raise ValueError(f"{args.run}: no scores yet; run `passk score` first")
    if args.json:
        print(json.dumps({"ppl": summary}))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="perplexity of each model's samples under each scorer (response tokens)")
    for col in ("samples by", "scored under", "scored", "q1", "median", "q3"):
        table.add_column(col, justify="right")
    for s in summary:
        def fmt(v):
            return ("-" if v is None else f"{v:.3f}")
        table.add_row(s["model"], s["scorer"], f"{s['scored']}/{s['samples']}", fmt(s["q1"]), fmt(s["median"]), fmt(s["q3"]))
    Console().print(table)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from passkcore.pipeline.run import is_run_dir
    from passkcore.report import write_report

    first = args.source[0]
    out = args.out or (Path(first) / "report" if is_run_dir(first) else Path("report"))
    html_path, json_path = write_report(args.source, out, base=args.base, resamples=args.bootstrap, seed=args.seed,
                                        benchmarks=args.benchmark, series=args.series,
                                        series_k=args.series_k, forecast_resamples=args.forecast_resamples,
                                        case_samples=args.case_samples, interval=args.interval)
    print(f"report: {html_path}\nnumbers: {json_path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from passkcore.demo import run_demo

    html_path, json_path = run_demo(args.out, arith=args.arith, code=args.code, n=args.n, max_tokens=args.max_tokens,
                                    sharp_temperature=args.sharp_temperature, seed=args.seed, bar=progress_bar,
                                    score_backend=args.backend, cluster=cluster_of(args), dtype=args.dtype)
    print(f"\nreport: {html_path}\nnumbers: {json_path}")
    return 0


def add_dtype(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dtype", choices=DTYPES, default="auto",
                   help="the sampling engine's dtype (kept in the run's manifest): auto is the run's recorded one, "
                        "else bfloat16 on GPUs and CPUs with bf16 arithmetic, float32 on other CPUs (where vLLM "
                        "emulates bf16, ~5x slower); PASSKCORE_DTYPE=bfloat16|float32 changes what auto picks")


def add_run_commands(sub: Any) -> None:
    p = sub.add_parser("sample", help="draw n samples per problem with vLLM into a run directory")
    p.add_argument("--model", default="smollm2-135m", help="smollm2-135m (embedded) or a local HF directory")
    p.add_argument("--problems", required=True,
                   help="humaneval, arith[:COUNT], a JSONL file, or a published benchmark file: [PRESET:]PATH "
                        "(JSONL, JSON or Parquet; presets math500, aime24, aime25, amc23, gsm8k, minerva, "
                        "olympiadbench, humaneval, humaneval+, mbpp+, livecodebench, mathvista, mathvision)")
    add_problem_fields(p)
    p.add_argument("--template", default="chat",
                   help="prompt template: chat (the model's chat template with passkcore's instruction), raw (the "
                        "problem text, no chat template), qwen-boxed, deepseek-math, abel, or a Jinja FILE over "
                        "the problem's fields")
    p.add_argument("--n", type=int, required=True, help="samples per problem")
    p.add_argument("--limit", type=int, help="take the first P problems")
    p.add_argument("--out", required=True, help="run directory (created, or continued)")
    p.add_argument("--label", help="model label in the store (default: the model name)")
    p.add_argument("--temperature", type=float, default=0.6)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--max-tokens", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunk", type=int, default=16, help="samples per request (large n is split across seeds)")
    add_dtype(p)
    p.add_argument("--batch-requests", type=int, default=16, help="requests per stored shard")
    p.add_argument("--window", type=int, default=256,
                   help="requests kept queued in the engine (in one process; each shard is stored as it finishes)")
    add_ray(p, replicas=True)
    p.add_argument("--tensor-parallel-size", type=int, default=1,
                   help="GPUs each vLLM engine spans (tensor parallel): the one engine in this process, or each "
                        "replica with --ray (default 1)")
    add_verbosity(p, cmd_sample)

    p = sub.add_parser("verify", help="verify every stored sample that has no verdict yet")
    p.add_argument("run", help="run directory")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per sample")
    p.add_argument("--memory-mb", type=int, default=1024,
                   help="address-space limit per code sample and per math worker (at least 512 with math)")
    p.add_argument("--math-extract", choices=("fallback", "boxed"), default="fallback",
                   help="math answers: the last \\boxed{} else the last expression (fallback), or \\boxed{} only")
    p.add_argument("--workers", type=int, help="parallel verifiers (default: one per core; with --ray, one per "
                                                "CPU of the cluster)")
    p.add_argument("--allow-package", action="append", dest="allow_packages", metavar="NAME",
                   help="a package code samples may import besides the standard library (repeatable; recorded)")
    add_ray(p)
    add_verbosity(p, cmd_verify)

    p = sub.add_parser("score", help="teacher-forced log-probs of stored samples under a model")
    p.add_argument("run", help="run directory")
    p.add_argument("--scorer", default="smollm2-135m", help="smollm2-135m (embedded) or a local HF directory")
    add_backend(p)
    p.add_argument("--dtype", choices=SCORE_DTYPES, default="float32",
                   help="the scorer's dtype (kept in the run's manifest per scorer label): float32 (default, "
                        "within 1e-4 of an fp32 transformers forward) or bfloat16 (faster on CPUs with bf16 "
                        "arithmetic, ~0.05 nats a token from fp32; its label ends in .bf16)")
    add_list(p, "--temperature", item=float, kind=NUMBERS, metavar="T",
             help="score under softmax(logits / T): 1.0,0.3 or --temperature 1.0 0.3 (several share one "
                  "backbone pass; default 1.0)")
    p.add_argument("--out", help="also write this scorer's scores to a Parquet file")
    add_ray(p, replicas=True)
    add_verbosity(p, cmd_score)

    p = sub.add_parser("ppl", help="median and quartiles of PPL per (model, scorer)")
    p.add_argument("run", help="run directory")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ppl)

    p = sub.add_parser("report", help="figures, a self-contained report.html and report.json")
    p.add_argument("source", nargs="+", help="run directories or count files (CSV/Parquet), one benchmark each")
    p.add_argument("--out", help="folder for report.html, report.json and the figures "
                                 "(default: RUN/report for a run, ./report for a count file; the first source)")
    add_list(p, "--benchmark", kind=NAMES, metavar="NAME",
             help="a name per source, in order: after each source (a.csv --benchmark A b.csv --benchmark B), "
                  "or all at the end (default: each source's file or folder name)")
    p.add_argument("--base", help="the base model for the efficiency gap (default: the first model)")
    add_list(p, "--series", kind=NAMES, metavar="LABEL",
             help="checkpoint labels in step order (default: labels sharing a prefix and ending in a "
                  "number, like rl-step100)")
    add_list(p, "--series-k", item=int, kind=NUMBERS, metavar="K",
             help="ks of the series figure (default: 1 and the largest power of two <= n)")
    p.add_argument("--bootstrap", type=int, default=DEFAULT_BOOTSTRAP, metavar="R",
                   help=f"resamples (population) or posterior draws (benchmark) per interval (default {DEFAULT_BOOTSTRAP})")
    p.add_argument("--interval", choices=TARGETS, default=DEFAULT_INTERVAL,
                   help=f"what every band and interval answers (default {DEFAULT_INTERVAL}): benchmark = these "
                        "problems, their samples random; population = problems like these (paired bootstrap)")
    p.add_argument("--forecast-resamples", type=int, default=DEFAULT_FORECAST_RESAMPLES, metavar="R",
                   help="bootstrap refits of each model's pass@K forecast and forecast crossing (the slowest "
                        f"part of a report: a few ms per refit and model; default {DEFAULT_FORECAST_RESAMPLES})")
    p.add_argument("--case-samples", type=int, default=3, metavar="M",
                   help="case studies (run directories): up to M correct samples per chosen problem, a seeded "
                        "choice, and one incorrect sample for contrast (default 3; 0 leaves the case studies out)")
    p.add_argument("--seed", type=int, default=0)
    add_verbosity(p, cmd_report)

    p = sub.add_parser("demo", help="the whole study on the embedded SmolLM2 (base vs sharpened policy)")
    p.add_argument("--out", default="runs/demo", help="run directory (continued if it exists)")
    p.add_argument("--arith", type=int, default=16, help="arithmetic problems")
    p.add_argument("--code", type=int, default=4, help="HumanEval problems")
    p.add_argument("--n", type=int, default=16, help="samples per problem and policy")
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--sharp-temperature", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=0)
    add_dtype(p)
    add_backend(p)
    add_ray(p, replicas=True)
    add_verbosity(p, cmd_demo)

    p = sub.add_parser("counts", help="group verdicts into problem_id, model, n, c")
    p.add_argument("run", help="run directory")
    p.add_argument("--out", required=True, help="counts file (.parquet, or .csv)")
    # Accepted as before, and said to be ignored: counts never need a cluster.
    p.add_argument("--ray", nargs="?", const="local", default=None, help=argparse.SUPPRESS)
    add_verbosity(p, cmd_counts)
