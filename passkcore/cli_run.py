"""``passk sample``, ``passk verify`` and ``passk counts``: the stages that build a run directory."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from passkcore.quiet import quiet_engines
from passkcore.sampling import SamplingConfig


@contextmanager
def progress_bar(description: str, unit: str) -> Iterator[Callable[[int, int], None]]:
    """A rich bar with rate and ETA; yields update(done, total)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(description, total=None, rate="")
        first: dict[str, float] = {}

        def update(done: int, total: int) -> None:
            import time

            now = time.monotonic()
            first.setdefault("t", now)
            first.setdefault("done", done)
            elapsed = now - first["t"]
            rate = (done - first["done"]) / elapsed if elapsed > 0 else 0.0
            bar.update(task, completed=done, total=total, rate=f"{rate:.1f} {unit}/s")

        yield update


def _cluster(args: argparse.Namespace) -> Any:
    """The executor ``--ray [ADDRESS]`` asks for: a Ray ``Cluster``, or None (this process)."""
    if args.ray is None:
        return None
    from passkcore.pipeline.executors import Cluster

    address = None if args.ray == _LOCAL else args.ray
    return Cluster(address=address, replicas=getattr(args, "replicas", None),
                   tensor_parallel_size=getattr(args, "tensor_parallel_size", 1),
                   cpus_per_replica=getattr(args, "cpus_per_replica", 1),
                   verify_workers=getattr(args, "workers", None))


def print_stage_stats(stats: Any) -> None:
    """Per-stage throughput across the cluster."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{stats.stage} on Ray: {stats.workers} workers")
    for col in ("items", "resumed", "rows", "tokens", "wall s", "rows/s", "tokens/s", "worker busy s"):
        table.add_column(col, justify="right")
    table.add_row(str(stats.items), str(stats.resumed), str(stats.rows), str(stats.tokens), f"{stats.seconds:.1f}",
                  f"{stats.rows_per_s:.2f}", f"{stats.tokens_per_s:.1f}", f"{stats.busy_seconds:.1f}")
    Console().print(table)


def cmd_sample(args: argparse.Namespace) -> int:
    from passkcore.pipeline import commands

    config = SamplingConfig(temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens,
                            seed=args.seed, chunk=args.chunk)
    cluster = _cluster(args)
    with progress_bar(f"sampling {args.label or args.model}", "samples") as update:
        store, stats = commands.sample(args.out, model=args.model, problems=args.problems, n=args.n, label=args.label,
                                       limit=args.limit, sampling=config, batch_requests=args.batch_requests,
                                       tensor_parallel_size=args.tensor_parallel_size, window=args.window,
                                       template=args.template, fields=problem_fields(args), cluster=cluster,
                                       progress=update)
    if cluster is not None:
        print_stage_stats(stats)
    print(f"samples stored in {store.root}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    import pyarrow as pa
    import pyarrow.compute as pc

    from passkcore.pipeline import commands

    cluster = _cluster(args)
    with progress_bar("verifying", "samples") as update:
        store, stats = commands.verify(args.run, options={"timeout_s": args.timeout, "memory_mb": args.memory_mb,
                                                                   "math_extract": args.math_extract},
                                       workers=args.workers, cluster=cluster, progress=update)
    if cluster is not None:
        print_stage_stats(stats)
    reasons = pa.concat_arrays([store.read("verdicts", m, ["reason"]).column("reason").combine_chunks()
                                for m in store.models] or [pa.array([], pa.string())])
    counted = pc.value_counts(reasons).to_pylist()
    print("verdicts: " + ", ".join(f"{r['values']} {r['counts']}" for r in counted))
    return 0


def cmd_counts(args: argparse.Namespace) -> int:
    from passkcore.pipeline.commands import write_counts

    table = write_counts(args.run, args.out)  # an Arrow group-by on keys: the same with or without --ray
    print(f"{table.num_rows} (problem, model) counts written to {args.out}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    import pyarrow.compute as pc

    from passkcore.pipeline import commands

    cluster = _cluster(args)
    with progress_bar(f"scoring under {args.scorer} ({args.backend})", "samples") as update:
        store, labels, stats = commands.score(args.run, scorer=args.scorer, backend=args.backend,
                                              temperatures=args.temperature, cluster=cluster, progress=update)
    if cluster is not None:
        print_stage_stats(stats)
    if args.out:
        commands.export_scores(store, labels, args.out)
    status = store.scores(labels, columns=["status"]).column("status")
    statuses = pc.value_counts(status).to_pylist()
    print(f"{len(status)} samples scored: " + ", ".join(f"{s['values']} {s['counts']}" for s in statuses))
    return 0


def cmd_ppl(args: argparse.Namespace) -> int:
    import json

    from passkcore.runs import ppl_summary, run_scores

    summary = ppl_summary(run_scores(args.run))
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


def _labels(values: Any) -> Any:
    """``--series a b`` and ``--series a,b`` alike; None when not given."""
    if values is None:
        return None
    return [part for v in values for part in v.split(",") if part]


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from passkcore.report import write_report
    from passkcore.store import is_run_dir

    first = args.source[0]
    out = args.out or (Path(first) / "report" if is_run_dir(first) else Path("report"))
    html_path, json_path = write_report(args.source, out, base=args.base, resamples=args.bootstrap, seed=args.seed,
                                        benchmarks=args.benchmark, series=_labels(args.series),
                                        series_k=args.series_k, forecast_resamples=args.forecast_resamples)
    print(f"report: {html_path}\nnumbers: {json_path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from passkcore.demo import run_demo

    html_path, json_path = run_demo(args.out, arith=args.arith, code=args.code, n=args.n, max_tokens=args.max_tokens,
                                    sharp_temperature=args.sharp_temperature, seed=args.seed, bar=progress_bar,
                                    score_backend=args.score_backend, cluster=_cluster(args))
    print(f"\nreport: {html_path}\nnumbers: {json_path}")
    return 0


_LOCAL = "local"


def _verbosity(p: argparse.ArgumentParser, func: Callable[[argparse.Namespace], int]) -> None:
    """``--verbose``, and the command run with the engines quiet unless it is given."""
    p.add_argument("--verbose", action="store_true",
                   help="show the engines' own logs and progress bars (vLLM, transformers, Ray, tqdm)")

    def run(args: argparse.Namespace) -> int:
        quiet_engines(args.verbose)
        return func(args)

    p.set_defaults(func=run)


def add_problem_fields(p: argparse.ArgumentParser) -> None:
    """The field mapping of a published benchmark file (``passkcore.problem_files``)."""
    p.add_argument("--id-field", help="problem file: the field holding the problem id (default id; presets differ)")
    p.add_argument("--prompt-field", help="problem file: the field holding the problem text (default prompt)")
    p.add_argument("--answer-field", help="problem file: the field holding the reference answer (default answer)")
    p.add_argument("--image-field", help="problem file: the field holding the problem's image(s): a path relative "
                                         "to the file, bytes or a data URI (default none; presets differ)")
    p.add_argument("--fields", metavar="MAPPING.json",
                   help='problem file: a JSON mapping {"preset"?, "id", "prompt", "answer", "answer_format", '
                        '"tests", "entry_point", "kind"}')


def problem_fields(args: argparse.Namespace) -> Any:
    """The mapping given by add_problem_fields' flags, or None."""
    fields = {"mapping_file": args.fields, "id": args.id_field, "prompt": args.prompt_field,
              "answer": args.answer_field, "images": getattr(args, "image_field", None)}
    return {k: v for k, v in fields.items() if v is not None} or None


def _add_ray(p: argparse.ArgumentParser, replicas: bool = False) -> None:
    p.add_argument("--ray", nargs="?", const=_LOCAL, default=None, metavar="ADDRESS",
                   help="run on Ray: alone, a local Ray instance; with an address (auto, host:6379, "
                        "ray://host:10001), that cluster")
    if replicas:
        p.add_argument("--replicas", type=int, help="with --ray: model replicas (default: one per GPU, 1 without)")
        p.add_argument("--cpus-per-replica", type=int, default=1, help="with --ray: CPU threads per replica")


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
    p.add_argument("--batch-requests", type=int, default=16, help="requests per stored shard")
    p.add_argument("--window", type=int, default=256,
                   help="requests kept queued in the engine (in one process; each shard is stored as it finishes)")
    _add_ray(p, replicas=True)
    p.add_argument("--tensor-parallel-size", type=int, default=1, help="with --ray: GPUs per vLLM replica")
    _verbosity(p, cmd_sample)

    p = sub.add_parser("verify", help="verify every stored sample that has no verdict yet")
    p.add_argument("run", help="run directory")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per sample")
    p.add_argument("--memory-mb", type=int, default=1024,
                   help="address-space limit per code sample and per math worker (at least 512 with math)")
    p.add_argument("--math-extract", choices=("fallback", "boxed"), default="fallback",
                   help="math answers: the last \\boxed{} else the last expression (fallback), or \\boxed{} only")
    p.add_argument("--workers", type=int, help="parallel verifiers (default: one per core; with --ray, one per "
                                                "CPU of the cluster)")
    _add_ray(p)
    _verbosity(p, cmd_verify)

    p = sub.add_parser("score", help="teacher-forced log-probs of stored samples under a model")
    p.add_argument("run", help="run directory")
    p.add_argument("--scorer", default="smollm2-135m", help="smollm2-135m (embedded) or a local HF directory")
    p.add_argument("--backend", choices=("fused", "torch", "vllm", "vllm_fused"), default="fused",
                   help="fused: exact fp32 (transformers, packed); vllm_fused: vLLM backbone + fused head, "
                        "faster once its engine is up (~20-70 s); torch: padded reference; vllm: prompt_logprobs")
    p.add_argument("--temperature", type=float, nargs="+", default=[1.0],
                   help="score under softmax(logits / T); several values share one backbone pass")
    p.add_argument("--out", help="also write this scorer's scores to a Parquet file")
    _add_ray(p, replicas=True)
    _verbosity(p, cmd_score)

    p = sub.add_parser("ppl", help="median and quartiles of PPL per (model, scorer)")
    p.add_argument("run", help="run directory")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ppl)

    p = sub.add_parser("report", help="figures, a self-contained report.html and report.json")
    p.add_argument("source", nargs="+", help="run directories or count files (CSV/Parquet), one benchmark each")
    p.add_argument("--out", help="folder for report.html, report.json and the figures "
                                 "(default: RUN/report for a run, ./report for a count file; the first source)")
    p.add_argument("--benchmark", nargs="+", action="extend", metavar="NAME",
                   help="a name per source, in order (default: each source's file or folder name)")
    p.add_argument("--base", help="the base model for the efficiency gap (default: the first model)")
    p.add_argument("--series", nargs="+", action="extend", metavar="LABEL",
                   help="checkpoint labels in step order (default: labels sharing a prefix and ending in a "
                        "number, like rl-step100)")
    p.add_argument("--series-k", type=int, nargs="+", metavar="K",
                   help="ks of the series figure (default: 1 and the largest power of two <= n)")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples")
    p.add_argument("--forecast-resamples", type=int, default=200, metavar="R",
                   help="bootstrap refits of each model's pass@K forecast and forecast crossing (the slowest "
                        "part of a report: a few ms per refit and model)")
    p.add_argument("--seed", type=int, default=0)
    _verbosity(p, cmd_report)

    p = sub.add_parser("demo", help="the whole study on the embedded SmolLM2 (base vs sharpened policy)")
    p.add_argument("--out", default="runs/demo", help="run directory (continued if it exists)")
    p.add_argument("--arith", type=int, default=16, help="arithmetic problems")
    p.add_argument("--code", type=int, default=4, help="HumanEval problems")
    p.add_argument("--n", type=int, default=16, help="samples per problem and policy")
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--sharp-temperature", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--score-backend", choices=("vllm_fused", "fused"), default="vllm_fused",
                   help="scoring backbone: vLLM (default, fastest on the full demo) or the exact fp32 transformers path")
    _add_ray(p, replicas=True)
    _verbosity(p, cmd_demo)

    p = sub.add_parser("counts", help="group verdicts into problem_id, model, n, c")
    p.add_argument("run", help="run directory")
    p.add_argument("--out", required=True, help="counts file (.parquet, or .csv)")
    _add_ray(p)
    _verbosity(p, cmd_counts)

    from passkcore.cli_import import add_import_command, cmd_import

    add_import_command(sub, add_problem_fields)
    _verbosity(sub.choices["import"], cmd_import)
