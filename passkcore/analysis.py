"""The numbers a report or ``passk estimate`` shows, computed once here for both.

A *source* (a count file, a run directory or an open run) is resolved once, at the caller's edge, into a
``Source``; everything below takes it open. The estimate report (``passk estimate --json``) holds, per
model, ``pass_at_k``, ``stderr`` and ``problems``, ``ci_low``/``ci_high`` for the ``interval_target``
(benchmark or population) and pairwise ``crossings`` when asked, and the extra metrics of ``--metric ... --forecast K``: ``pass_hat_k`` (per k),
``maj_at_k`` (per k), ``g_pass_at_k`` ({tau: per k}) with ``mg_pass_at_k`` (per k), ``bayes`` ({mean,
low, high}: per k, over problems), ``cover`` ({tau, value}) and ``forecast`` ({k, value, low, high}).
All values are means over the model's problems. ``ppl_summary``/``ppl_values``: PPL quartiles per
(model, scorer) and the values behind them, under one rule (rows scored ``ok`` with a PPL).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from passkcore.numbers.counts import ModelCounts, read_counts, split_models, validate
from passkcore.numbers.coverage import align_models
from passkcore.numbers.estimate import pass_at_k_curve, pass_at_k_variance, pass_hat_k_curve, powers_of_two
from passkcore.numbers.forecast import forecast_pass_at_k
from passkcore.numbers.majority import answer_classes, maj_at_k
from passkcore.numbers.metrics import bayes_pass_at_k, cover_at_tau, g_pass_at_k, mg_pass_at_k
from passkcore.numbers.stats import PairedBootstrap
from passkcore.pipeline.run import is_run_dir
from passkcore.pipeline.store import SampleStore

METRICS = ("pass@k", "pass^k", "maj@k", "g-pass@k", "bayes", "cover")
DEFAULT_TAUS = (0.25, 0.5, 0.75, 1.0)
# One default per knob for `passk estimate` and `passk report` alike. 2,000 paired resamples put a 95%
# percentile bound within ~0.002 of its limit on MATH500's 500 problems; 200 forecast refits cost a few
# ms each per model (the slowest part of a report).
DEFAULT_CI = 0.95
DEFAULT_BOOTSTRAP = 2000
# What an interval answers by default: this benchmark (its problems fixed, their samples random), the
# question a study's claims ask ("on MATH500, ..."); "population" asks about problems like these.
# Why, and the calibration of both: docs/metrics.md, "What an interval answers".
DEFAULT_INTERVAL = "benchmark"
INTERVAL_METHODS = {"benchmark": "posterior draws of each problem's solve rate (problems fixed, samples random)",
                    "population": "paired bootstrap over problems (problems and samples random)"}
DEFAULT_FORECAST_RESAMPLES = 200


@dataclass(frozen=True)
class Source:
    """One input, resolved once: a count file (``run`` None) or an open run."""

    path: Path
    run: Optional[SampleStore] = None

    @classmethod
    def open(cls, source: SourceLike) -> Source:
        """A ``Source`` as it is; an open run as it is (not opened again); a run directory opened; any
        other path taken as a count file."""
        if isinstance(source, Source):
            return source
        if isinstance(source, SampleStore):
            return cls(source.root, source)
        if not isinstance(source, (str, Path)):
            raise TypeError(f"expected a path, a SampleStore or a Source, got {type(source).__name__}")
        path = Path(source)
        return cls(path, SampleStore(path) if is_run_dir(path) else None)

    @property
    def name(self) -> str:
        """The file or directory name a benchmark is called by default."""
        return self.path.name if self.run is not None or self.path.is_dir() else self.path.stem

    def counts(self) -> dict[str, ModelCounts]:
        """Per-model counts: the file's rows, or the run's Arrow group-by of its verdicts."""
        if self.run is None:
            return read_counts(self.path)
        return split_models(validate(self.run.counts(), source=str(self.path)))


SourceLike = Union[str, Path, SampleStore, Source]


def load_counts(source: SourceLike) -> dict[str, ModelCounts]:
    """Reads, validates and splits by model a count file (CSV or Parquet), a run directory or an open
    run (``SampleStore``: not opened again)."""
    return Source.open(source).counts()


def default_ks(models: dict[str, ModelCounts]) -> list[int]:
    """Powers of two up to the smallest n of any model."""
    return powers_of_two(min(int(m.n.min()) for m in models.values()))


def check_ks(models: dict[str, ModelCounts], ks: list[int]) -> None:
    """A ValueError naming the first problem whose n is below the largest k."""
    kmax = max(ks)
    for m in models.values():
        short = np.flatnonzero(m.n < kmax)
        if short.size:
            i = int(short[0])
            raise ValueError(
                f"k={kmax} exceeds n={int(m.n[i])} for model {m.model}, problem_id {m.problem_ids[i]} "
                f"(row {int(m.rows[i])}) and {short.size - 1} more problem(s)"
            )


def estimate_report(models: dict[str, ModelCounts], ks: list[int]) -> dict[str, Any]:
    """The ``passk estimate --json`` document: mean pass@k and its standard error per model."""
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


def add_bootstrap(report: dict[str, Any], models: dict[str, ModelCounts], ks: list[int], *, ci: float,
                  resamples: int, seed: int, target: str = DEFAULT_INTERVAL) -> None:
    """Adds ``ci_low``/``ci_high`` per model for ``target`` (``"interval_target"`` names it) and, for
    two or more models, the ``crossings`` of every pair, to an estimate report."""
    _, aligned = align_models(models, intersect=False)
    boot = PairedBootstrap(aligned, resamples=resamples, seed=seed, target=target)
    report["interval_target"] = target
    names = list(models)
    boot.prepare(names, ks)
    for name in names:
        band = boot.band(name, ks, ci)
        report["models"][name]["ci_low"] = band.low.tolist()
        report["models"][name]["ci_high"] = band.high.tolist()
    if len(names) >= 2:
        report["crossings"] = [boot.crossing(a, b, ci).as_dict() for a, b in combinations(names, 2)]


def maj_curves(source: SourceLike, models: dict[str, ModelCounts], ks: list[int]) -> dict[str, list[float]]:
    """Mean maj@k per model at ``ks``; a ValueError names why when the source has no answer classes.
    ``source``: a run (open, or its directory) or, refused, a count file."""
    src = Source.open(source)
    run = src.run
    if run is None:
        raise ValueError(f"maj@k needs each sample's answer class: {src.path} is a count file (n and c only); "
                         "give a run directory whose verdicts carry answer_key")
    source = src.path
    table = run.samples(columns=["model", "problem_id", "sample_index", "correct", "answer_key"])
    classes = answer_classes(table)
    out = {}
    for name in models:
        ac = classes.get(name)
        if ac is None:
            raise ValueError(f"maj@k: no samples for model {name} in {source}")
        keyed = any(s.size > (1 if i >= 0 else 0) for s, i in zip(ac.class_sizes, ac.correct)) or not np.any(ac.abstain)
        if not keyed:
            raise ValueError(f"maj@k: the verdicts of model {name} in {source} carry no answer_key (store schema v1 "
                             "or a verifier without answer keys); re-run `passk verify` to fill it")
        out[name] = maj_at_k(ac.class_sizes, ac.correct, ks, ac.abstain).mean(axis=0).tolist()
    return out


def add_metrics(report: dict[str, Any], models: dict[str, ModelCounts], ks: list[int], metrics: list[str], *,
                source: SourceLike, taus: list[float], forecast: Optional[list[int]], ci: float = DEFAULT_CI,
                resamples: int = DEFAULT_FORECAST_RESAMPLES, seed: int = 0) -> None:
    """Adds the requested metrics (and the forecast) to each model of an estimate report, in place."""
    maj = maj_curves(source, models, ks) if "maj@k" in metrics else {}
    for name, m in models.items():
        entry = report["models"][name]
        if "pass^k" in metrics:
            entry["pass_hat_k"] = pass_hat_k_curve(m.n, m.c, ks).values.tolist()
        if name in maj:
            entry["maj_at_k"] = maj[name]
        if "g-pass@k" in metrics:
            values = g_pass_at_k(m.n, m.c, ks, taus).mean(axis=0)  # (K, T)
            entry["g_pass_at_k"] = {str(t): values[:, j].tolist() for j, t in enumerate(taus)}
            entry["mg_pass_at_k"] = mg_pass_at_k(m.n, m.c, ks).mean(axis=0).tolist()
        if "bayes" in metrics:
            b = bayes_pass_at_k(m.n, m.c, ks, ci=ci)
            entry["bayes"] = {"mean": np.asarray(b.overall_mean).tolist(), "low": np.asarray(b.overall_low).tolist(),
                              "high": np.asarray(b.overall_high).tolist()}
        if "cover" in metrics:
            entry["cover"] = {"tau": taus, "value": np.asarray(cover_at_tau(m.n, m.c, taus)).tolist()}
        if forecast:
            f = forecast_pass_at_k(m.n, m.c, forecast, resamples=resamples, seed=seed, ci=ci)
            one = len(forecast) == 1
            entry["forecast"] = {key: (float(np.asarray(v).reshape(-1)[0]) if one else np.asarray(v).tolist())
                                 for key, v in (("value", f.value), ("low", f.low), ("high", f.high))}
            entry["forecast"] = {"k": forecast[0] if one else forecast, **entry["forecast"]}


def ppl_groups(scores: pa.Table) -> list[tuple[str, str, int, np.ndarray]]:
    """``(model, scorer, samples, ppl)`` per (model, scorer), sorted: ``ppl`` holds the PPL of the rows
    scored ``ok`` that have one (the one rule of every PPL number shown), as float64. One Arrow
    group-by; the values are split per group by numpy, not row by row."""
    if scores.num_rows == 0:
        return []
    order = [("model", "ascending"), ("scorer", "ascending")]
    table = scores.select(["model", "scorer", "ppl", "status"])
    totals = table.group_by(["model", "scorer"], use_threads=False).aggregate([([], "count_all")]).sort_by(order)
    keep = pc.fill_null(pc.and_(pc.equal(table.column("status"), "ok"), pc.is_valid(table.column("ppl"))), False)
    ok = table.filter(keep).sort_by(order)
    groups = ok.group_by(["model", "scorer"], use_threads=False).aggregate([([], "count_all")]).sort_by(order)
    ppl = ok.column("ppl").to_numpy(zero_copy_only=False).astype(np.float64)
    ends = np.cumsum(groups.column("count_all").to_numpy())
    values = dict(zip(zip(groups.column("model").to_pylist(), groups.column("scorer").to_pylist()),
                      np.split(ppl, ends[:-1]) if ends.size else []))
    empty = np.empty(0, np.float64)
    return [(m, s, int(n), values.get((m, s), empty)) for m, s, n in
            zip(totals.column("model").to_pylist(), totals.column("scorer").to_pylist(),
                totals.column("count_all").to_pylist())]


def ppl_summary(scores: pa.Table) -> list[dict[str, Any]]:
    """Median and quartiles of PPL per (model, scorer) (``ppl_groups``' rows), with how many samples
    the scorer holds and how many of them count."""
    out = []
    for model, scorer, samples, values in ppl_groups(scores):
        q = [float(x) for x in np.quantile(values, [0.25, 0.5, 0.75])] if values.size else [None, None, None]
        out.append({"model": model, "scorer": scorer, "samples": samples, "scored": int(values.size),
                    "q1": q[0], "median": q[1], "q3": q[2]})
    return out


def ppl_values(scores: pa.Table) -> dict[str, list[float]]:
    """The PPL values behind ``ppl_summary``, keyed ``model|scorer`` (groups with values only)."""
    return {f"{m}|{s}": v.tolist() for m, s, _, v in ppl_groups(scores) if v.size}
