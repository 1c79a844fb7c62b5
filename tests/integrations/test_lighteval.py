"""passkcore.integrations.lighteval metric objects, driven as lighteval drives them (compute_sample,
`task@k=..@n=..` attributes, corpus aggregations)."""

from __future__ import annotations

import numpy as np
import pytest
from lighteval.metrics.metrics_sample import SampleLevelComputation
from lighteval.metrics.utils.metric_utils import SampleLevelMetricGrouping
from lighteval.models.model_output import ModelResponse
from lighteval.tasks.requests import Doc

import passkcore
from passkcore.integrations import lighteval as pl

DOC = Doc(query="What is 2 + 3?", choices=["5"], gold_index=0)


def score(metric: SampleLevelMetricGrouping, texts: list[str], doc: Doc = DOC) -> dict[str, float]:
    return metric.compute_sample(doc=doc, model_response=ModelResponse(text=texts))


def test_metric_objects_are_what_lighteval_accepts() -> None:
    for metric in (pl.pass_at_k(k=1), pl.maj_at_k(k=1), pl.g_pass_at_k(k=2, n=4, taus=[0.5])):
        assert isinstance(metric, SampleLevelMetricGrouping)
        assert isinstance(metric.sample_level_fn, SampleLevelComputation)
        assert "@" in metric.metric_name  # lighteval applies task@k=..@n=.. only to such metrics


def test_n_is_each_documents_own_never_the_first() -> None:
    metric = pl.pass_at_k(k=[1, 2])
    first = score(metric, ["5", "x", "\\boxed{5}", "7"])  # c=2 of n=4
    second = score(metric, ["5", "x"])  # c=1 of n=2: lighteval's PassAtK would keep n=4 from the first
    assert first == pytest.approx(dict(zip(["pass@1", "pass@2"], passkcore.pass_at_k(4, [2], [1, 2])[0])))
    assert second == pytest.approx({"pass@1": 0.5, "pass@2": 1.0})
    assert metric.sample_level_fn.n is None


def test_task_parameters_set_k_and_n_like_lighteval() -> None:
    metric = pl.pass_at_k(k=1)
    for attribute, value in {"k": 4, "n": 6}.items():  # what lighteval's registry does for task@k=4@n=6
        setattr(metric.sample_level_fn, attribute, value)
    assert metric.sample_level_fn.num_samples() == 6
    assert list(metric.get_corpus_aggregations()) == ["pass@4"]
    out = score(metric, ["5"] * 3 + ["1"] * 5)  # 8 came back: the first n=6 count (c=3)
    assert out == pytest.approx({"pass@4": float(passkcore.pass_at_k(6, [3], 4)[0])})
    with pytest.raises(ValueError, match="k=4 exceeds the document's n=3"):
        score(metric, ["5", "1", "2"])


def test_maj_and_g_pass_values_from_the_core() -> None:
    maj = score(pl.maj_at_k(k=[1, 3]), ["5", "\\boxed{5}", "4", "4", "no answer here"])
    want = passkcore.maj_at_k([np.array([2, 2])], [0], [1, 3], abstain=[1])[0]
    assert [maj["maj@1"], maj["maj@3"]] == pytest.approx(want.tolist(), abs=1e-15)
    g = score(pl.g_pass_at_k(k=[2, 4], n=4, taus=[0.5, 1.0]), ["5", "x", "5", "3"])
    want_g = passkcore.g_pass_at_k(4, [2], [2, 4], [0.5, 1.0])[0]
    want_mg = passkcore.mg_pass_at_k(4, [2], [2, 4])[0]
    assert g == pytest.approx({"g-pass@2_0.5": want_g[0, 0], "g-pass@2_1.0": want_g[0, 1], "mg-pass@2": want_mg[0],
                               "g-pass@4_0.5": want_g[1, 0], "g-pass@4_1.0": want_g[1, 1], "mg-pass@4": want_mg[1]})
    assert list(pl.g_pass_at_k(k=2, n=4, taus=[0.5]).get_corpus_aggregations()) == ["g-pass@2_0.5", "mg-pass@2"]


def test_exact_and_callable_judges() -> None:
    assert score(pl.pass_at_k(k=1, judge="exact"), [" 5", "5.0"]) == {"pass@1": 0.5}
    assert score(pl.pass_at_k(k=2, judge=lambda r, g: r.endswith(g)), ["it is 5", "6"]) == {"pass@2": 1.0}


@pytest.mark.parametrize("make, match", [
    (lambda: pl.pass_at_k(k=0), "k=0"),
    (lambda: pl.pass_at_k(k=1, n=0), "n=0"),
    (lambda: pl.pass_at_k(k=1, judge="fuzzy"), "judge='fuzzy'"),
    (lambda: pl.g_pass_at_k(k=1, n=2, taus=[1.5]), "tau=1.5"),
    (lambda: pl.g_pass_at_k(k=1, n=2, taus=[]), "taus must be a non-empty list"),
    (lambda: pl.maj_at_k(k=1, bogus=True), "unknown metric option"),
])
def test_bad_parameters_are_value_errors(make, match: str) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match=match):
        make()
    with pytest.raises(ValueError, match="exactly one gold"):
        score(pl.pass_at_k(k=1), ["5"], Doc(query="q", choices=["5", "6"], gold_index=[0, 1]))
