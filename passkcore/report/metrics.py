"""The estimators of ``passk estimate --metric``, per benchmark panel: the ``metrics`` block of report.json.

Every value comes from ``passkcore.analysis.add_metrics`` (the function behind ``passk estimate
--metric ... --json``), so the report and the CLI print the same numbers on the same counts. The source
comes open (``passkcore.analysis.Source``): resolved once, by ``build_data``.
"""

from __future__ import annotations

from typing import Any, Optional

from passkcore.analysis import Source, add_metrics, maj_curves
from passkcore.numbers.counts import ModelCounts
from passkcore.numbers.forecast import forecast_crossing

G_TAUS = (0.5, 0.75, 1.0)
# cover@tau on a 0.05 grid: 21 points are enough for a smooth curve and cost microseconds.
COVER_TAUS = tuple(round(0.05 * i, 2) for i in range(21))
# Forecast Ks as multiples of the panel's smallest n.
FORECAST_MULTIPLES = (2, 4)


def metrics_section(source: Source, models: dict[str, ModelCounts], base: str, ks: list[int], n_min: int, *,
                    ci: float, forecast_resamples: int, seed: int) -> dict[str, Any]:
    """maj@k (run directories with answer keys), G-pass@k/mG-pass@k, Bayes@N, cover@tau and the forecast
    of pass@K at K = 2n, 4n per model, plus each model's forecast crossing with the base."""
    forecast_ks = [m * n_min for m in FORECAST_MULTIPLES]
    report: dict[str, Any] = {"models": {name: {} for name in models}}
    add_metrics(report, models, ks, ["g-pass@k", "bayes"], source=source, taus=list(G_TAUS), forecast=forecast_ks,
                ci=ci, resamples=forecast_resamples, seed=seed)
    covers: dict[str, Any] = {"models": {name: {} for name in models}}
    add_metrics(covers, models, ks, ["cover"], source=source, taus=list(COVER_TAUS), forecast=None, ci=ci)
    maj_reason: Optional[str] = None
    try:
        maj = maj_curves(source, models, ks)
    except ValueError as err:
        maj, maj_reason = {}, str(err)
    out: dict[str, Any] = {"k": ks, "g_taus": list(G_TAUS), "cover_taus": list(COVER_TAUS), "forecast_k": forecast_ks,
                           "forecast_resamples": forecast_resamples, "ci": ci, "seed": seed,
                           "maj_at_k_absent": maj_reason, "models": {}}
    for name, m in models.items():
        entry = report["models"][name]
        block: dict[str, Any] = {}
        if name in maj:
            block["maj_at_k"] = maj[name]
        # A list aligned with g_taus, not passk estimate's {"0.5": ...}: report.json paths are dot-separated.
        block["g_pass_at_k"] = [entry["g_pass_at_k"][str(t)] for t in G_TAUS]
        block.update({key: entry[key] for key in ("mg_pass_at_k", "bayes", "forecast")})
        block["cover"] = covers["models"][name]["cover"]
        block["forecast_crossing"] = None
        if name != base:
            b = models[base]
            cross = forecast_crossing(b.n, b.c, m.n, m.c, kmax=forecast_ks[-1], resamples=forecast_resamples,
                                      seed=seed, ci=ci)
            block["forecast_crossing"] = {"base": base, "kmax": forecast_ks[-1], **cross._asdict()}
        out["models"][name] = block
    return out
