"""Every number the report shows, as one JSON-able dict (``report.json``).

A report covers one or several sources (run directories or count files), one *benchmark* each. The
top-level keys of schema ``passkcore.report/1`` describe the first benchmark, exactly as a
single-source report always has; ``benchmarks`` holds every benchmark's panel (the same keys plus
``name`` and a ``summary`` row per model against the base), and ``series``, ``entropy``,
``coverage_ids`` and ``findings`` cover all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from passkcore.analysis import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_FORECAST_RESAMPLES,
    DEFAULT_INTERVAL,
    INTERVAL_METHODS,
    Source,
    SourceLike,
    ppl_summary,
    ppl_values,
)
from passkcore.audit.store import read_audits
from passkcore.numbers.counts import ModelCounts
from passkcore.numbers.coverage import Coverage, coverage_summary
from passkcore.numbers.estimate import powers_of_two
from passkcore.numbers.stats import PairedBootstrap, accuracy_histogram, check_target
from passkcore.pipeline.store import SampleStore
from passkcore.report.audit import audit_block, audit_rows
from passkcore.report.cases import (
    DEFAULT_CASE_SAMPLES,
    HARDEST,
    NEEDS_RUN,
    case_studies,
    check_case_samples,
    sample_labels,
)
from passkcore.report.entropy import entropy_section, own_scorer
from passkcore.report.findings import findings
from passkcore.report.metrics import metrics_section
from passkcore.report.perplexity import SCORE_COLUMNS, headline, ppl_by_verdict, series_ppl
from passkcore.report.series import series_groups, series_sections

SCHEMA = "passkcore.report/1"
# Keys a single-source report has always had at the top level; a benchmark panel repeats them.
PANEL_KEYS = ("source", "base", "models", "problems", "k", "k_table", "curves", "crossings", "coverage",
              "histograms", "gaps", "ppl")


def as_sources(source: Union[SourceLike, Sequence[SourceLike]]) -> list[Source]:
    """One source, or a sequence of them, as a non-empty list of ``Source``: the report's one edge, where
    each run is opened once (an open ``SampleStore`` is kept as it is) and every section gets it open."""
    items = [source] if isinstance(source, (str, Path, SampleStore, Source)) else list(source)
    if not items:
        raise ValueError("source: give at least one run directory or count file")
    out: list[Source] = []
    for i, item in enumerate(items):
        if not isinstance(item, (str, Path, SampleStore, Source)):
            raise TypeError(f"source {i}: expected a path or a SampleStore, got {type(item).__name__}")
        out.append(Source.open(item))
    return out


def benchmark_names(sources: Sequence[Source], names: Optional[Sequence[str]]) -> list[str]:
    """The given names (one per source), or each source's file or directory name."""
    if names is None:
        stems = [s.name for s in sources]
        return [stem if stems.count(stem) == 1 else f"{stem}-{i + 1}" for i, stem in enumerate(stems)]
    names = list(names)
    if len(names) != len(sources):
        raise ValueError(f"--benchmark: {len(names)} name(s) for {len(sources)} source(s); give one per source")
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"--benchmark {i}: empty benchmark name {name!r}")
        if names.index(name) != i:
            raise ValueError(f"--benchmark {i}: name {name!r} is given twice")
    return names


def ppl_section(source: Source) -> Optional[dict[str, Any]]:
    """PPL quartiles per (model, scorer) and the values behind the box plot; None without scores.
    One Arrow read of four columns (``passkcore.analysis.ppl_groups``' rule: rows scored ok with a PPL)."""
    if source.run is None:
        return None
    scores = source.run.scores(columns=SCORE_COLUMNS)
    if scores.num_rows == 0:
        return None
    return {"summary": ppl_summary(scores), "values": ppl_values(scores),
            "by_verdict": ppl_by_verdict(source.run, scores)}


def coverage_difference_ci(only_model: int, only_base: int, problems: int, *, resamples: int, seed: int,
                           ci: float) -> list[int]:
    """Percentile interval of solved(model) - solved(base), resampling problems with replacement:
    a resample draws how many only-model, only-base and other problems it holds (a multinomial)."""
    rng = np.random.default_rng([seed, 1])
    p = np.array([only_model, only_base, problems - only_model - only_base], dtype=np.float64) / problems
    draws = rng.multinomial(problems, p, size=resamples)
    diff = draws[:, 0] - draws[:, 1]
    low, high = np.quantile(diff, [(1 - ci) / 2, (1 + ci) / 2], method="inverted_cdf")
    return [int(low), int(high)]


def _coverage_ci(boot: PairedBootstrap, base: str, model: str, k: int, table: Any, ci: float) -> list[int]:
    """The coverage difference's interval for the bootstrap's target: population, the multinomial above;
    benchmark, posterior draws of problems solved with k samples (P x pass@k), widened to whole problems."""
    if boot.target == "population":
        return coverage_difference_ci(table.only_b, table.only_a, table.problems, resamples=boot.resamples,
                                      seed=boot.seed, ci=ci)
    band = boot.solved_difference(model, base, k, ci)
    return [int(np.floor(band.low[0] + 1e-9)), int(np.ceil(band.high[0] - 1e-9))]


def _summary_row(bench: str, base: str, model: str, boot: PairedBootstrap, cov: Coverage, n_min: int,
                 gap: dict[str, Any], ci: float) -> dict[str, Any]:
    """pass@1, pass@k_max, crossing, coverage and gap of one model against the base."""
    row: dict[str, Any] = {"benchmark": bench, "base": base, "model": model, "k_max": n_min}
    for who, name in (("base", base), ("model", model)):
        for k in (1, n_min):
            band = boot.band(name, [k], ci)
            tag = "1" if k == 1 else "k_max"
            row[f"pass_at_{tag}_{who}"] = float(band.estimate[0])
            row[f"pass_at_{tag}_{who}_ci"] = [float(band.low[0]), float(band.high[0])]
    cross = boot.crossing(base, model, ci).as_dict()
    row.update({"crossing_lower": cross["a"], "crossing_k": cross["k"], "crossing_ci_low": cross["ci_low"],
                "crossing_ci_high": cross["ci_high"], "crossing_fraction": cross["fraction_of_resamples"]})
    table = cov.table(base, model, n_min)
    row.update({"solved_base": table.both + table.only_a, "solved_model": table.both + table.only_b,
                "only_base": table.only_a, "only_model": table.only_b, "problems": table.problems,
                "coverage_difference": table.only_b - table.only_a,
                "coverage_difference_ci": _coverage_ci(boot, base, model, n_min, table, ci)})
    row.update({"gap_k_max": gap["k_max"], "gap": gap["gap"], "gap_ci_low": gap["ci_low"],
                "gap_ci_high": gap["ci_high"]})
    return row


def coverage_ids(bench: str, cov: Coverage, k: int) -> list[dict[str, Any]]:
    """The problem ids behind every coverage cell, per unordered pair of models."""
    out = []
    for t in cov.pairs(k):
        out.append({"benchmark": bench, "a": t.a, "b": t.b, "k": k,
                    **{cell: [str(p) for p in getattr(t, f"{cell}_ids").tolist()]
                       for cell in ("both", "only_a", "only_b", "neither")}})
    return out


SAMPLING_KEYS = ("model", "dtype", "temperature", "top_p", "max_tokens", "seed", "template")


def sampling_section(source: Source, models: Sequence[str]) -> Optional[list[dict[str, Any]]]:
    """A row per model label with its sampling settings as the run's manifest keeps them (the engine
    dtype included: two runs sampled in other dtypes say so); None for a count file. A setting the
    manifest did not record (an imported label, a run made before dtypes were kept) is null."""
    if source.run is None:
        return None
    known = source.run.manifest.get("models", {})
    return [{"label": m, **{k: (known.get(m) or {}).get(k) for k in SAMPLING_KEYS}} for m in models]


def build_panel(bench: str, source: Source, models: dict[str, ModelCounts], base: Optional[str], *,
                resamples: int, seed: int, ci: float, k_max_gap: int,
                forecast_resamples: int = DEFAULT_FORECAST_RESAMPLES,
                interval: str = DEFAULT_INTERVAL) -> tuple[dict[str, Any], Coverage, PairedBootstrap]:
    """One benchmark's curves, bands, crossings, coverage, histograms, gaps, PPL, summary and the
    ``metrics`` block (maj@k, G-pass@k, Bayes@N, cover@tau, forecast; ``forecast_resamples`` refits)."""
    names = list(models)
    if base is not None and base not in models:
        raise ValueError(f"--base {base!r} is not among the models {names} of benchmark {bench!r}")
    base = base or names[0]
    cov = Coverage.from_counts(models)
    counts = {m: cov.counts(m) for m in names}
    n_min = min(int(n.min()) for n, _ in counts.values())
    ks = list(range(1, n_min + 1))
    boot = PairedBootstrap(counts, resamples=resamples, seed=seed, target=interval)
    boot.prepare(names, ks)
    curves = {}
    for m in names:
        band = boot.band(m, ks, ci)
        curves[m] = {"pass_at_k": band.estimate.tolist(), "ci_low": band.low.tolist(), "ci_high": band.high.tolist()}
    panel: dict[str, Any] = {
        "name": bench,
        "source": str(source.path),
        "interval_target": interval,
        "base": base,
        "models": names,
        "problems": {m: int(counts[m][0].size) for m in names},
        "k": ks,
        "k_table": powers_of_two(n_min),
        "curves": curves,
        "crossings": [boot.crossing(a, b, ci).as_dict() for a, b in combinations(names, 2)],
        "coverage": coverage_summary(cov, n_min) if len(names) >= 2 else None,
        "histograms": {},
        "gaps": [],
        "ppl": ppl_section(source),
        "sampling": sampling_section(source, names),
        "summary": [],
        "metrics": metrics_section(source, models, base, powers_of_two(n_min), n_min, ci=ci,
                                   forecast_resamples=forecast_resamples, seed=seed),
    }
    if panel["ppl"]:
        panel["ppl"]["base_scorer"] = own_scorer(source.run, base)
        panel["ppl"]["headline"] = headline(panel["ppl"], names)
    for m in names:
        h = accuracy_histogram(*counts[m])
        panel["histograms"][m] = {"labels": h.labels, "counts": h.counts.tolist()}
    for m in names:
        if m != base:
            g = boot.efficiency_gap(m, base, k_max=k_max_gap, ci=ci)
            gap = {"trained": m, "base": base, "k_max": g.k_max, "gap": g.estimate, "ci_low": g.low, "ci_high": g.high}
            panel["gaps"].append(gap)
            panel["summary"].append(_summary_row(bench, base, m, boot, cov, n_min, gap, ci))
    return panel, cov, boot


def build_data(source: Union[SourceLike, Sequence[SourceLike]], *, base: Optional[str] = None,
               resamples: int = DEFAULT_BOOTSTRAP,
               seed: int = 0, ci: float = 0.95, k_max_gap: int = 256, benchmarks: Optional[Sequence[str]] = None,
               series: Optional[Sequence[str]] = None, series_k: Optional[Sequence[int]] = None,
               forecast_resamples: int = DEFAULT_FORECAST_RESAMPLES,
               case_samples: int = DEFAULT_CASE_SAMPLES, interval: str = DEFAULT_INTERVAL) -> dict[str, Any]:
    """Every number the report shows, for one source or several (one benchmark each).

    ``benchmarks`` names the sources (default: their file or directory names); ``series`` orders
    checkpoint labels (default: labels sharing a prefix and ending in a number, like ``rl-step100``);
    ``series_k`` the ks of the series figure (default: 1 and the largest power of two <= n);
    ``forecast_resamples`` the bootstrap refits of each panel's pass@K forecast and forecast crossing
    (200 by default: about 50 s per model pair on MATH500's 500 problems at n = 128, K up to 512);
    ``case_samples`` the correct samples shown per case study (``passkcore.report.cases``; 0: none);
    ``interval`` what every band and interval answers: ``"benchmark"`` (these problems, their samples
    random) or ``"population"`` (problems like these); ``interval_target`` in report.json names it.
    """
    check_target(interval)
    if isinstance(forecast_resamples, bool) or not isinstance(forecast_resamples, int) or forecast_resamples < 1:
        raise ValueError(f"forecast_resamples must be a positive integer, got {forecast_resamples!r}")
    check_case_samples(case_samples)
    sources = as_sources(source)
    names = benchmark_names(sources, benchmarks)
    panels, all_series, ids = [], [], []
    entropy_rows: list[dict[str, Any]] = []
    cases: list[dict[str, Any]] = []
    cases_absent: list[dict[str, Any]] = []
    audits: list[dict[str, Any]] = []
    # Counts are small ((n, c) per problem); loading them all first lets a bad --series or --series-k
    # fail in a second, not after minutes of bootstrap and forecast refits.
    loaded = [src.counts() for src in sources]
    found = [series_groups(models, base or next(iter(models)), series, series_k)[0] for models in loaded]
    if series is not None and not any(found):
        raise ValueError(f"--series {list(series)}: no benchmark has all of these models")
    for bench, src, models in zip(names, sources, loaded):
        panel, cov, boot = build_panel(bench, src, models, base, resamples=resamples, seed=seed, ci=ci,
                                       k_max_gap=k_max_gap, forecast_resamples=forecast_resamples, interval=interval)
        panels.append(panel)
        if len(panel["models"]) >= 2:
            ids.extend(coverage_ids(bench, cov, panel["k"][-1]))
        found_series = series_sections(bench, models, panel["base"], cov, boot, order=series, ks=series_k, ci=ci)
        for s in found_series:
            s["ppl_base"] = series_ppl(s, panel["ppl"])
        all_series.extend(found_series)
        run_audits = read_audits(src.run) if src.run is not None else None  # read once: three readers below
        if src.run is None:
            cases_absent.append({"benchmark": bench, "reason": NEEDS_RUN})
        else:
            cases.extend(case_studies(bench, src.run, cov, panel["base"], panel["k"][-1], samples=case_samples,
                                      seed=seed, base_scorer=own_scorer(src.run, panel["base"]),
                                      labels=sample_labels(src.run, run_audits)))
        entropy_rows.extend(entropy_section(bench, src, panel["models"], panel["base"]))
        audits.extend(audit_rows(bench, src, panel["k"], run_audits))
    first = panels[0]
    data: dict[str, Any] = {"schema": SCHEMA, **{key: first[key] for key in PANEL_KEYS},
                            "interval_target": interval,
                            "bootstrap": {"ci": ci, "resamples": resamples, "seed": seed, "target": interval,
                                          "method": INTERVAL_METHODS[interval]},
                            "benchmarks": panels, "series": all_series,
                            "entropy": {"weighting": ENTROPY_WEIGHTING, "rows": entropy_rows} if entropy_rows else None,
                            "coverage_ids": ids, "case_studies": cases, "case_studies_absent": cases_absent,
                            "case_study_rules": {"samples": case_samples, "hardest": HARDEST, "seed": seed},
                            "audit": audit_block(audits)}
    data["findings"] = findings(data)
    return data


ENTROPY_WEIGHTING = ("token-weighted: sum over samples of mean_entropy x num_tokens / sum of num_tokens "
                     "(samples scored ok), in nats per response token")
