"""passkcore: exact, native-accelerated pass@k, coverage and perplexity scoring for LLM sampling studies."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import passkcore.quiet  # noqa: F401  (in engine processes vLLM spawns: quiet loggers before vLLM logs)
from passkcore._native import core as _core  # noqa: F401  (loads the compiled core, with a friendly error)
from passkcore.numbers.coverage import Coverage, PairTable
from passkcore.numbers.estimate import (
    Curve,
    Variance,
    estimate_pass_at_k,
    exact_pass_at_k,
    exact_pass_hat_k,
    pass_at_k,
    pass_at_k_curve,
    pass_at_k_variance,
    pass_hat_k,
    pass_hat_k_curve,
)
from passkcore.numbers.forecast import (
    Forecast,
    ForecastCrossing,
    ZIBBFit,
    fit_zibb,
    forecast_crossing,
    forecast_pass_at_k,
)
from passkcore.numbers.inputs import DroppedProblemsWarning
from passkcore.numbers.majority import AnswerClasses, answer_classes, exact_maj_at_k, maj_at_k
from passkcore.numbers.metrics import (
    BayesPassAtK,
    bayes_pass_at_k,
    cover_at_tau,
    exact_g_pass_at_k,
    exact_mg_pass_at_k,
    g_pass_at_k,
    mg_pass_at_k,
)
from passkcore.numbers.stats import (
    AccuracyHistogram,
    Band,
    Crossing,
    Gap,
    PairedBootstrap,
    accuracy_histogram,
    pass_at_k_interval,
)

if TYPE_CHECKING:
    from passkcore.pipeline.store import SampleStore
    from passkcore.scoring import Scorer

__version__ = "0.1.0"
# The run store and the scorer, loaded on first use: `import passkcore` (which every engine process vLLM
# spawns runs) stays the numbers' import, ~0.6 s less than importing the pipeline and the scorer too.
LAZY = {"SampleStore": "passkcore.pipeline.store", "Scorer": "passkcore.scoring"}


def __getattr__(name: str) -> Any:
    if name in LAZY:
        value = getattr(importlib.import_module(LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'passkcore' has no attribute {name!r}")


__all__ = [
    "SampleStore",
    "Scorer",
    "AnswerClasses",
    "BayesPassAtK",
    "Forecast",
    "ForecastCrossing",
    "ZIBBFit",
    "answer_classes",
    "bayes_pass_at_k",
    "cover_at_tau",
    "exact_g_pass_at_k",
    "exact_maj_at_k",
    "exact_mg_pass_at_k",
    "fit_zibb",
    "forecast_crossing",
    "forecast_pass_at_k",
    "g_pass_at_k",
    "maj_at_k",
    "mg_pass_at_k",
    "AccuracyHistogram",
    "Band",
    "Coverage",
    "Crossing",
    "Curve",
    "Gap",
    "PairTable",
    "PairedBootstrap",
    "accuracy_histogram",
    "DroppedProblemsWarning",
    "Variance",
    "__version__",
    "estimate_pass_at_k",
    "exact_pass_at_k",
    "exact_pass_hat_k",
    "pass_at_k",
    "pass_at_k_curve",
    "pass_at_k_interval",
    "pass_at_k_variance",
    "pass_hat_k",
    "pass_hat_k_curve",
]
