"""Audited numbers: counts with guesses taken as wrong, the guess rate with its interval, and a judge's
agreement with people.

``audited_counts``: a correct sample whose latest label is ``guess`` counts as incorrect; n is
unchanged. Whose labels: every person's (the latest of any auditor not named ``judge:...``), or one
auditor's when named (a judge's only then). With no such labels the counts are the run's own.

The guess rate is guesses / (valid + guess): an ``unsure`` label decides nothing and is counted apart.
Its 95% interval is the Wilson score interval (closed form; coverage close to nominal for small
samples, unlike the Wald interval, and never outside [0, 1]). Agreement is Cohen's kappa over the
three labels on the samples both a judge and a person labelled: (p_o - p_e) / (1 - p_e); undefined
(None) when both gave one and the same label throughout (p_e = 1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional, Union

import pyarrow as pa

from passkcore.audit.store import LABELS, Key, latest_labels, opened, read_audits
from passkcore.numbers.counts import COUNTS_SCHEMA
from passkcore.pipeline.store import SampleStore

Z95 = 1.959963984540054  # the standard normal's 0.975 quantile
INTERVAL = "Wilson score interval, 95%"


def guess_keys(latest: Mapping[Key, Mapping[str, Any]]) -> dict[tuple[str, str], int]:
    """How many samples of each (model, problem_id) carry ``guess`` as their latest label."""
    out: dict[tuple[str, str], int] = {}
    for (model, pid, _), row in latest.items():
        if row["label"] == "guess":
            out[(model, pid)] = out.get((model, pid), 0) + 1
    return out


def audited_counts(run: Union[str, Path, SampleStore], auditor: Optional[str] = None,
                   models: Optional[Sequence[str]] = None, *, audits: Optional[pa.Table] = None,
                   counts: Optional[pa.Table] = None) -> pa.Table:
    """``problem_id, model, n, c`` as ``SampleStore.counts`` gives them, less each problem's samples whose
    latest label (every person's, or ``auditor``'s) is ``guess``. ``audits`` and ``counts``: the run's
    tables when the caller has read them already."""
    store = opened(run)
    counts = store.counts(models) if counts is None else counts
    guesses = guess_keys(latest_labels(read_audits(store) if audits is None else audits, auditor))
    if not guesses:
        return counts
    pids, names = counts.column("problem_id").to_pylist(), counts.column("model").to_pylist()
    c = counts.column("c").to_pylist()
    audited = []
    for pid, model, value in zip(pids, names, c):
        less = guesses.get((model, pid), 0)
        if less > value:  # labels are stored for correct samples only; a run whose verdicts moved says so
            raise ValueError(f"{store.root}: {less} guess label(s) on problem {pid!r} of model {model!r}, "
                             f"which has {value} correct sample(s)")
        audited.append(value - less)
    return pa.table({"problem_id": counts.column("problem_id"), "model": counts.column("model"),
                     "n": counts.column("n"), "c": pa.array(audited, pa.int64())}, schema=COUNTS_SCHEMA)


def wilson_interval(successes: int, trials: int, z: float = Z95) -> Optional[list[float]]:
    """The Wilson score interval of a binomial proportion; None for no trials."""
    if trials <= 0:
        return None
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return [max(0.0, centre - half), min(1.0, centre + half)]


def cohen_kappa(pairs: Sequence[tuple[str, str]]) -> Optional[float]:
    """Cohen's kappa of two raters over LABELS; None for no pairs or when chance agreement is 1."""
    if not pairs:
        return None
    total = len(pairs)
    observed = sum(a == b for a, b in pairs) / total
    expected = sum((sum(a == lab for a, _ in pairs) / total) * (sum(b == lab for _, b in pairs) / total)
                   for lab in LABELS)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1 - expected)


def agreement(judge: Mapping[Key, Mapping[str, Any]], people: Mapping[Key, Mapping[str, Any]]) -> dict[str, Any]:
    """A judge's labels against the latest person's labels: samples both labelled, raw agreement, kappa."""
    pairs = [(people[k]["label"], judge[k]["label"]) for k in judge if k in people]
    return {"both": len(pairs), "agree": sum(a == b for a, b in pairs),
            "kappa": cohen_kappa(pairs)}
