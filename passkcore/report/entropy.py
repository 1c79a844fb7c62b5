"""Mean per-token entropy of each model's samples under itself and under the base (Figure 18).

"Under itself" is the scorer that is the sampling model at its sampling temperature: the run's
manifest records each label's model and temperature, and a scorer's label is the model's name with
``.T<temperature>`` unless the temperature is 1 (``Scorer.label_for``). Means are weighted by
tokens, sum(mean_entropy x num_tokens) / sum(num_tokens), so a long response counts per token and
a short one does not weigh as much as a long one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import pyarrow.compute as pc

from passkcore.analysis import Source
from passkcore.pipeline.store import SampleStore


def scorer_label(model: str, temperature: float) -> str:
    """The label ``passk score --scorer MODEL --temperature T`` stores its scores under.

    Mirrors ``Scorer``'s naming (the embedded model by name, a directory by its last component,
    ``.T<t>`` unless t = 1) without loading a model.
    """
    name = model if model == "smollm2-135m" else Path(model).name
    return name if float(temperature) == 1.0 else f"{name}.T{float(temperature):g}"


def weighted_entropy(run: SampleStore) -> dict[tuple[str, str], dict[str, Any]]:
    """Token-weighted mean entropy, tokens and samples per (model, scorer), over rows scored ok."""
    table = run.scores(columns=["model", "scorer", "num_tokens", "mean_entropy", "status"])
    table = table.filter(pc.and_(pc.equal(table.column("status"), "ok"), pc.is_finite(table.column("mean_entropy"))))
    if table.num_rows == 0:
        return {}
    tokens = pc.cast(table.column("num_tokens"), "float64")
    table = table.append_column("weighted", pc.multiply(table.column("mean_entropy"), tokens))
    grouped = table.group_by(["model", "scorer"]).aggregate(
        [("weighted", "sum"), ("num_tokens", "sum"), ("num_tokens", "count")]).to_pylist()
    out = {}
    for g in grouped:
        total = int(g["num_tokens_sum"])
        out[(g["model"], g["scorer"])] = {"mean_entropy": g["weighted_sum"] / total if total else None,
                                          "tokens": total, "samples": int(g["num_tokens_count"])}
    return out


def _cell(groups: dict[tuple[str, str], dict[str, Any]], model: str, scorer: Optional[str]) -> Optional[dict[str, Any]]:
    return None if scorer is None else groups.get((model, scorer))


def own_scorer(run: Optional[SampleStore], label: str) -> Optional[str]:
    """The scorer label of the model that sampled ``label``, at its sampling temperature (from the
    run's manifest); None for a count file (no run) or when the manifest does not record both."""
    s = None if run is None else run.manifest.get("models", {}).get(label)
    if not s or "model" not in s or "temperature" not in s:
        return None
    return scorer_label(str(s["model"]), float(s["temperature"]))


def entropy_section(bench: str, source: Source, models: Sequence[str], base: str) -> list[dict[str, Any]]:
    """One row per sampled model: its entropy under itself and under the base, where scored."""
    run = source.run
    if run is None:
        return []
    groups = weighted_entropy(run)
    if not groups:
        return []
    settings = run.manifest.get("models", {})
    base_scorer = own_scorer(run, base)
    rows = []
    for m in models:
        self_scorer = own_scorer(run, m)
        temperature = settings.get(m, {}).get("temperature")
        rows.append({"benchmark": bench, "model": m, "temperature": temperature, "self_scorer": self_scorer,
                     "self": _cell(groups, m, self_scorer), "base": base, "base_scorer": base_scorer,
                     "under_base": _cell(groups, m, base_scorer),
                     "all": [{"scorer": s, **v} for (mm, s), v in sorted(groups.items()) if mm == m]})
    return rows
