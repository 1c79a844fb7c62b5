"""``passk sample``, ``passk verify`` and ``passk counts``: the stages that build a run directory."""

from __future__ import annotations

import argparse
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from passkcore.sampling import SamplingConfig


@contextmanager
def progress_bar(description: str, unit: str) -> Iterator[Callable[[int, int], None]]:
    """A rich bar with rate and ETA; yields update(done, total)."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

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


def cmd_sample(args: argparse.Namespace) -> int:
    from passkcore.runs import sample_run

    config = SamplingConfig(temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens,
                            seed=args.seed, chunk=args.chunk)
    with progress_bar(f"sampling {args.label or args.model}", "samples") as update:
        store = sample_run(args.out, model=args.model, problems=args.problems, n=args.n, label=args.label,
                           limit=args.limit, sampling=config, progress=update, batch_requests=args.batch_requests)
    print(f"samples stored in {store.root}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from passkcore.runs import verify_run

    with progress_bar("verifying", "samples") as update:
        store = verify_run(args.run, timeout_s=args.timeout, memory_mb=args.memory_mb, workers=args.workers,
                           progress=update)
    table = store.samples(columns=["reason"])
    import pyarrow.compute as pc

    reasons = pc.value_counts(table.column("reason")).to_pylist()
    print("verdicts: " + ", ".join(f"{r['values']} {r['counts']}" for r in reasons))
    return 0


def cmd_counts(args: argparse.Namespace) -> int:
    from passkcore.runs import write_counts

    table = write_counts(args.run, args.out)
    print(f"{table.num_rows} (problem, model) counts written to {args.out}")
    return 0


def add_run_commands(sub: Any) -> None:
    p = sub.add_parser("sample", help="draw n samples per problem with vLLM into a run directory")
    p.add_argument("--model", default="smollm2-135m", help="smollm2-135m (embedded) or a local HF directory")
    p.add_argument("--problems", required=True, help="humaneval, arith[:COUNT] or a JSONL file")
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
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("verify", help="verify every stored sample that has no verdict yet")
    p.add_argument("run", help="run directory")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per sample")
    p.add_argument("--memory-mb", type=int, default=1024, help="address-space limit for code samples")
    p.add_argument("--workers", type=int, help="parallel verifiers (default: one per core)")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("counts", help="group verdicts into problem_id, model, n, c")
    p.add_argument("run", help="run directory")
    p.add_argument("--out", required=True, help="counts file (.parquet, or .csv)")
    p.set_defaults(func=cmd_counts)
