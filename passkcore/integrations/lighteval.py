"""lighteval metric objects: pass@k, maj@k and G-pass@k over each document's own n samples, exact.

lighteval's PassAtK takes n from the first document it sees and keeps it (``self.n = len(predictions)``
on the shared metric object); its MajAtN votes over the first n with first-seen ties; G-pass@k goes
through scipy per document. These return ``SampleLevelMetricGrouping`` objects whose
``sample_level_fn`` is a ``SampleLevelComputation`` computing every value with the C++ core from the
document's own samples, answers judged by passkcore's math verifier (or ``exact`` text, or a callable).
In a custom task (``--custom-tasks my_tasks.py``)::

    from passkcore.integrations.lighteval import pass_at_k
    LightevalTaskConfig(..., metrics=[pass_at_k(k=[1, 4, 16], n=16)])

``task@k=4@n=16`` on the command line sets ``k`` and ``n`` as for lighteval's own pass@k; n is the
number of samples generated (each document is scored on its first n samples, or on all it has when
fewer came back) and never changes from one document to the next.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np

import passkcore
from passkcore.extras import needs_extra

with needs_extra("lighteval", by=__name__):
    from lighteval.metrics.metrics_sample import SampleLevelComputation, SamplingMetric
    from lighteval.metrics.utils.metric_utils import SampleLevelMetricGrouping
    from lighteval.tasks.requests import SamplingMethod

from passkcore.integrations.judging import MATH_OPTIONS, Judge, checked_ks, checked_options, judged, maj_classes

Ks = Union[int, Sequence[int]]


def _k_list(k: Any) -> list[int]:
    raw = list(k) if isinstance(k, (list, tuple)) else [k]
    for v in raw:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"k must be a positive int or a list of them, got k={v!r}")
    if not raw:
        raise ValueError("k is empty: ask for at least one k")
    return list(dict.fromkeys(int(v) for v in raw))


class PasskComputation(SamplingMetric, SampleLevelComputation):
    """One document's exact values from its own samples (``kind``: pass, maj or g-pass)."""

    def __init__(self, kind: str, k: Ks, n: Optional[int] = None, judge: Judge = "math",
                 taus: Sequence[float] = (), **options: Any) -> None:
        super().__init__()
        if kind not in ("pass", "maj", "g-pass"):
            raise ValueError(f"kind must be pass, maj or g-pass, got kind={kind!r}")
        if not (judge in ("math", "exact") or callable(judge)):
            raise ValueError(f"judge must be 'math', 'exact' or a callable(response, reference) -> bool, got judge={judge!r}")
        self.kind, self.judge, self.taus = kind, judge, [float(t) for t in taus]
        self.options = checked_options(options, MATH_OPTIONS)
        self.k = k
        self.n = n
        self.attribute_must_be_set = ["k"]

    @property
    def k(self) -> list[int]:
        return self._k

    @k.setter
    def k(self, value: Ks) -> None:  # lighteval's `task@k=4` sets it after construction
        self._k = _k_list(value)

    @property
    def n(self) -> Optional[int]:
        return self._n

    @n.setter
    def n(self, value: Optional[int]) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
            raise ValueError(f"n must be a positive int or None, got n={value!r}")
        self._n = None if value is None else int(value)

    @property
    def metric_names(self) -> list[str]:
        if self.kind == "g-pass":
            return [name for k in self.k for name in [f"g-pass@{k}_{t}" for t in self.taus] + [f"mg-pass@{k}"]]
        return [f"{self.kind}@{k}" for k in self.k]

    def num_samples(self) -> int:
        return self.n if self.n is not None else max(self.k)

    def compute(self, doc: Any, model_response: Any, **kwargs: Any) -> dict[str, float]:
        golds = doc.get_golds()
        if len(golds) != 1:
            raise ValueError(f"document {getattr(doc, 'id', '?')!r}: pass@k needs exactly one gold answer, got {len(golds)}")
        texts = [str(t) for t in model_response.final_text]
        if self.n is not None:
            texts = texts[: self.n]
        if not texts:
            raise ValueError(f"document {getattr(doc, 'id', '?')!r} has no samples")
        n = len(texts)
        ks = checked_ks(self.k, n)
        correct, keys = judged(texts, str(golds[0]), self.judge, self.options)
        c = [int(sum(correct))]
        if self.kind == "pass":
            values = np.asarray(passkcore.pass_at_k(n, c, ks)).reshape(-1)
            return {f"pass@{k}": float(v) for k, v in zip(ks, values)}
        if self.kind == "maj":
            sizes, index, abstain = maj_classes(correct, keys)
            if not sizes:
                return {f"maj@{k}": 0.0 for k in ks}
            values = np.asarray(passkcore.maj_at_k([np.asarray(sizes, dtype=np.int64)], [index], ks,
                                                   abstain=[abstain])).reshape(-1)
            return {f"maj@{k}": float(v) for k, v in zip(ks, values)}
        g = np.asarray(passkcore.g_pass_at_k(n, c, ks, self.taus)).reshape(len(ks), len(self.taus))
        mg = np.asarray(passkcore.mg_pass_at_k(n, c, ks)).reshape(-1)
        out: dict[str, float] = {}
        for i, k in enumerate(ks):
            out.update({f"g-pass@{k}_{t}": float(g[i, j]) for j, t in enumerate(self.taus)})
            out[f"mg-pass@{k}"] = float(mg[i])
        return out


@dataclass
class PasskMetricGrouping(SampleLevelMetricGrouping):
    """A SampleLevelMetricGrouping whose names follow its computation's current k (set by ``task@k=..``)."""

    def get_corpus_aggregations(self) -> dict[str, Callable[..., float]]:
        names = self.sample_level_fn.metric_names  # type: ignore[union-attr]
        return dict.fromkeys(names, np.mean)


def _grouping(name: str, computation: PasskComputation) -> PasskMetricGrouping:
    # The metric name contains "@": lighteval applies `task@k=..@n=..` parameters only to such metrics.
    return PasskMetricGrouping(metric_name=name, higher_is_better=True, category=SamplingMethod.GENERATIVE,  # type: ignore[arg-type]
                               sample_level_fn=computation, corpus_level_fn=np.mean)  # type: ignore[arg-type]


def pass_at_k(k: Ks, n: Optional[int] = None, judge: Judge = "math", **options: Any) -> PasskMetricGrouping:
    """Exact unbiased pass@k per document (``pass@{k}`` for each k), averaged over documents."""
    return _grouping("passkcore-pass@k", PasskComputation("pass", k, n, judge, **options))


def maj_at_k(k: Ks, n: Optional[int] = None, judge: Judge = "math", **options: Any) -> PasskMetricGrouping:
    """Exact maj@k per document (``maj@{k}``): the chance the correct answer class wins a vote of k
    samples drawn without replacement (ties split evenly, samples without an answer abstain)."""
    return _grouping("passkcore-maj@k", PasskComputation("maj", k, n, judge, **options))


def g_pass_at_k(k: Ks, n: Optional[int], taus: Sequence[float], judge: Judge = "math",
                **options: Any) -> PasskMetricGrouping:
    """Exact G-pass@k_tau (``g-pass@{k}_{tau}``) and mG-pass@k (``mg-pass@{k}``) per document."""
    if isinstance(taus, (str, bytes)) or not isinstance(taus, Sequence) or not taus:
        raise ValueError(f"taus must be a non-empty list of thresholds in [0, 1], got taus={taus!r}")
    for t in taus:
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.0 <= t <= 1.0:
            raise ValueError(f"taus must be thresholds in [0, 1], got tau={t!r}")
    return _grouping("passkcore-g-pass@k", PasskComputation("g-pass", k, n, judge, taus=taus, **options))
