"""``passk import FORMAT PATH... --out RUN``: other eval stacks' per-sample results into a run (or a
counts file when ``--out`` ends in .parquet/.csv)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from passkcore.cli.common import add_problem_fields, add_verbosity, problem_fields
from passkcore.importers import FORMATS


def cmd_import(args: argparse.Namespace) -> int:
    options: dict[str, Any] = {}
    if args.format == "lm-eval":
        options.update(verify=args.verify, filter_name=args.filter)
        if args.id_field:
            options["id_field"] = args.id_field
    if args.format == "evalplus":
        options["tests"] = args.tests
    if args.format in ("inspect", "evalscope", "verl"):
        options["threshold"] = args.threshold
    if args.format in ("inspect", "evalscope") and args.scorer:
        options["scorer"] = args.scorer
    elif args.scorer:
        raise ValueError("--scorer chooses the score of an inspect log or an evalscope review file")
    if Path(args.out).suffix.lower() in (".parquet", ".csv"):
        from passkcore.importers.run import import_counts

        if args.metric is not None and args.n is not None:
            options["n"] = args.n
        table, note = import_counts(args.format, args.paths, args.out, model=args.model, metric=args.metric,
                                    workers=args.workers, **options)
        print(f"{table.num_rows} (problem, model) counts written to {args.out}\n{note}")
        return 0
    if args.metric is not None:
        raise ValueError("--metric gives counts only: pass --out FILE.parquet or FILE.csv")
    from passkcore.importers.run import import_run

    fields = None if args.format == "lm-eval" else problem_fields(args)
    store = import_run(args.format, args.paths, args.out, model=args.model, template=args.template,
                       problems=args.problems, fields=fields, workers=args.workers, **options)
    # Read back only the imported labels' key columns: the store's joined view of 10^6 samples would
    # dominate the import's peak memory.
    for label in imported_labels(store, args.model):
        n = store.read("samples", label, ["sample_index"]).num_rows
        correct = store.read("verdicts", label, ["correct"]).column("correct")
        with_verdicts = len(correct) - correct.null_count
        right = int(pc.sum(correct).as_py() or 0)
        print(f"{label}: {n} samples, {with_verdicts} with verdicts, {right} correct")
    print(f"imported into {store.root}")
    return 0


def imported_labels(store: Any, model: Any) -> list[str]:
    """The labels this import wrote: ``--model``, or those registered from this format's sources."""
    if model:
        return [model]
    return [m for m, settings in store.manifest["models"].items() if "imported" in settings]


def add_import_command(sub: Any) -> None:
    p = sub.add_parser("import", help="read another eval stack's per-sample results into a run or a counts file")
    p.add_argument("format", choices=FORMATS, help="lm-eval (--log_samples JSONL), lighteval (details Parquet), "
                                                   "evalplus (eval_results.json), livecodebench (*_eval_all.json), "
                                                   "rlvr (the RLVR paper's per-problem JSONL), samples (generic "
                                                   "JSONL/Parquet), inspect (.eval/.json logs), opencompass "
                                                   "(results + predictions JSON), evalscope (reviews JSONL), verl "
                                                   "(validation/rollout dumps {step}.jsonl)")
    p.add_argument("paths", nargs="+", help="result files (several: concatenated in order)")
    p.add_argument("--out", required=True, help="run directory (created, or extended with a new model label), or a "
                                                "counts file (.parquet/.csv)")
    p.add_argument("--model", help="model label (default: the file's model column, else the format's name)")
    p.add_argument("--template", help="the model's prompt template for scoring (default raw: the imported prompt "
                                      "texts as they are; chat, qwen-boxed, ... or a Jinja FILE over the problems)")
    p.add_argument("--problems", help="the benchmark the results belong to ([PRESET:]PATH, humaneval, ...): the "
                                      "run's problems (default: taken from the results)")
    add_problem_fields(p)
    p.add_argument("--verify", choices=("math", "filtered"), default="math",
                   help="lm-eval: re-verify each response with math-verify against the target (math), or compare "
                        "the task's filtered answers with the target (filtered)")
    p.add_argument("--filter", help="lm-eval: which filter's lines to read (default: the first in the file)")
    p.add_argument("--tests", choices=("plus", "base"), default="plus",
                   help="evalplus: correct means base and plus tests pass (plus), or base tests pass (base)")
    p.add_argument("--metric", help="lighteval: recover c from this per-document mean-over-samples metric (counts "
                                    "output only)")
    p.add_argument("--n", type=int, help="lighteval --metric: samples per document when the file does not say")
    p.add_argument("--scorer", help="inspect: the scorer whose values are the verdicts (needed when a log has several); "
                                    "evalscope: the metric of the score (default its main score)")
    p.add_argument("--threshold", type=float, default=1.0,
                   help="inspect, evalscope: correct = value >= THRESHOLD (inspect: C 1, P 0.5, I/N 0); verl: correct = "
                        "score >= THRESHOLD where a line has no acc (default 1.0)")
    p.add_argument("--workers", type=int, help="parallel verifiers for texts verified at import")
    add_verbosity(p, cmd_import)
