"""The extra metrics of ``passk estimate --metric ... --forecast K``: one JSON key per metric per model.

Keys added to each model of the estimate report (the existing ``pass_at_k``, ``stderr`` and ``problems``
stay as they are): ``pass_hat_k`` (per k), ``maj_at_k`` (per k), ``g_pass_at_k`` ({tau: per k}) with
``mg_pass_at_k`` (per k), ``bayes`` ({mean, low, high}: per k, over problems), ``cover`` ({tau, value})
and ``forecast`` ({k, value, low, high}). All values are means over the model's problems.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from passkcore.counts import ModelCounts

if TYPE_CHECKING:
    from passkcore.pipeline.store import RunSource

METRICS = ("pass@k", "pass^k", "maj@k", "g-pass@k", "bayes", "cover")
DEFAULT_TAUS = (0.25, 0.5, 0.75, 1.0)


def parse_metrics(text: Optional[str]) -> list[str]:
    if text is None:
        return ["pass@k"]
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise ValueError(f"--metric: unknown metric(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(METRICS)}")
    return list(dict.fromkeys(names))


def parse_floats(text: Optional[str], flag: str, default: tuple[float, ...]) -> list[float]:
    if text is None:
        return list(default)
    out = []
    for part in text.split(","):
        try:
            out.append(float(part))
        except ValueError:
            raise ValueError(f"{flag}: {part.strip()!r} is not a number") from None
    return out


def parse_forecast(text: Optional[str]) -> Optional[list[int]]:
    if text is None:
        return None
    out = []
    for part in text.split(","):
        try:
            k = int(part)
        except ValueError:
            raise ValueError(f"--forecast: {part.strip()!r} is not an integer") from None
        if k < 1:
            raise ValueError(f"--forecast: K must be at least 1, got {k}")
        out.append(k)
    return out


def maj_curves(source: RunSource, models: dict[str, ModelCounts], ks: list[int]) -> dict[str, list[float]]:
    """Mean maj@k per model at ``ks``; a ValueError names why when the source has no answer classes.
    ``source``: a run directory, an open run (``SampleStore``) or, refused, a count file."""
    from passkcore.majority import answer_classes, maj_at_k
    from passkcore.pipeline.store import as_run

    run = as_run(source)
    if run is None:
        raise ValueError(f"maj@k needs each sample's answer class: {source} is a count file (n and c only); "
                         "give a run directory whose verdicts carry answer_key")
    source = run.root
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
                source: RunSource, taus: list[float], forecast: Optional[list[int]], ci: float = 0.95,
                resamples: int = 1000, seed: int = 0) -> None:
    """Adds the requested metrics (and the forecast) to each model of an estimate report, in place."""
    from passkcore.estimate import pass_hat_k_curve
    from passkcore.forecast import forecast_pass_at_k
    from passkcore.metrics import bayes_pass_at_k, cover_at_tau, g_pass_at_k, mg_pass_at_k

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
