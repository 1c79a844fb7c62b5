"""Checkpoint series: pass@k at a few ks against the training step, and each checkpoint's coverage
against the base (the paper's Figure 1 right and Table 4)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Optional

from passkcore.numbers.counts import ModelCounts
from passkcore.numbers.coverage import Coverage
from passkcore.numbers.estimate import pass_at_k_curve, powers_of_two
from passkcore.numbers.stats import PairedBootstrap

# A checkpoint label ends in its step: "rl-step100", "ckpt_40", "grpo200".
_STEP = re.compile(r"^(?P<prefix>.*?\D)?(?P<step>\d+)$")


def label_step(label: str) -> Optional[tuple[str, int]]:
    """(prefix, step) of a label ending in a number, or None."""
    m = _STEP.match(label)
    if m is None:
        return None
    return m.group("prefix") or "", int(m.group("step"))


def find_series(models: Sequence[str], base: str) -> list[list[str]]:
    """Groups of two or more non-base labels that share a prefix and end in a step, ordered by step."""
    groups: dict[str, list[tuple[int, str]]] = {}
    for m in models:
        parsed = label_step(m)
        if m != base and parsed is not None and parsed[0]:
            groups.setdefault(parsed[0], []).append((parsed[1], m))
    return [[m for _, m in sorted(items)] for items in groups.values()
            if len(items) >= 2 and len({s for s, _ in items}) == len(items)]


def series_ks(n_min: int, ks: Optional[Sequence[int]]) -> list[int]:
    """The ks of the series figure: the given ones, or 1 and the largest power of two <= n."""
    if ks is None:
        return sorted({1, powers_of_two(n_min)[-1]})
    out = []
    for i, k in enumerate(ks):
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n_min:
            raise ValueError(f"--series-k {i}: k must be an integer in [1, n = {n_min}], got {k!r}")
        out.append(k)
    return sorted(set(out))


def _steps(labels: list[str]) -> tuple[list[int], str]:
    """Steps from the labels' numeric suffixes when every label has a distinct one, else positions."""
    parsed = [label_step(m) for m in labels]
    steps = [p[1] for p in parsed if p is not None]
    if len(steps) == len(labels) and len(set(steps)) == len(steps):
        return steps, "label suffix"
    return list(range(len(labels))), "position in --series"


def series_section(bench: str, labels: list[str], models: dict[str, ModelCounts], base: str, cov: Coverage,
                   boot: PairedBootstrap, ks: list[int], ci: float) -> dict[str, Any]:
    """One series: per k, each checkpoint's pass@k (exactly ``passk estimate``'s number) with its
    paired bootstrap interval, and each checkpoint's coverage against the base."""
    steps, step_source = _steps(labels)
    values = []
    for k in ks:
        row: dict[str, Any] = {"k": k, "pass_at_k": [], "ci_low": [], "ci_high": []}
        for m in labels:
            # The same estimator, on the same per-model arrays, as `passk estimate`: equal to the bit.
            row["pass_at_k"].append(float(pass_at_k_curve(models[m].n, models[m].c, [k]).values[0]))
            band = boot.band(m, [k], ci)
            row["ci_low"].append(float(band.low[0]))
            row["ci_high"].append(float(band.high[0]))
        b = boot.band(base, [k], ci)
        row["base"] = {"pass_at_k": float(pass_at_k_curve(models[base].n, models[base].c, [k]).values[0]),
                       "ci_low": float(b.low[0]), "ci_high": float(b.high[0])}
        values.append(row)
    n_min = min(int(models[m].n.min()) for m in [base, *labels])
    rows = []
    for m in labels:
        if m == base:
            continue
        t = cov.table(m, base, n_min)
        rows.append({"model": m, "both": t.both, "only_model": t.only_a, "only_base": t.only_b, "neither": t.neither})
    order = [base, *[m for m in labels if m != base]]
    sub = Coverage(cov.problem_ids, {m: cov.counts(m) for m in order})
    return {"benchmark": bench, "labels": labels, "steps": steps, "step_source": step_source, "base": base,
            "k": ks, "values": values,
            "coverage": {"k": n_min, "rows": rows,
                         "matrix": {"models": order, "solved_by_row_not_col": sub.matrix(n_min).tolist()}}}


def series_groups(models: dict[str, ModelCounts], base: str, order: Optional[Sequence[str]],
                  ks: Optional[Sequence[int]]) -> tuple[list[list[str]], list[int]]:
    """The benchmark's series (the ``order`` given, when it has all of those labels, or those found)
    and the ks of its figure; bad ``order`` or ``ks`` raise here, before anything is computed."""
    if order is not None:
        labels = list(order)
        if len(labels) < 2:
            raise ValueError(f"--series: give at least two model labels in step order, got {labels}")
        for i, m in enumerate(labels):
            if labels.index(m) != i:
                raise ValueError(f"--series {i}: label {m!r} is given twice")
        groups = [labels] if all(m in models for m in labels) else []
    else:
        groups = find_series(list(models), base)
    n_min = min(int(m.n.min()) for m in models.values())
    return groups, series_ks(n_min, ks)


def series_sections(bench: str, models: dict[str, ModelCounts], base: str, cov: Coverage, boot: PairedBootstrap,
                    *, order: Optional[Sequence[str]], ks: Optional[Sequence[int]], ci: float) -> list[dict[str, Any]]:
    """The benchmark's series sections (see ``series_groups``)."""
    groups, chosen = series_groups(models, base, order, ks)
    return [series_section(bench, g, models, base, cov, boot, chosen, ci) for g in groups]
