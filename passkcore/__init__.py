"""passkcore: exact, native-accelerated pass@k, coverage and perplexity scoring for LLM sampling studies."""

from __future__ import annotations

from passkcore._inputs import DroppedProblemsWarning
from passkcore._native import core as _core
from passkcore.estimate import (
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

__version__ = "0.1.0"

__all__ = [
    "Curve",
    "DroppedProblemsWarning",
    "Variance",
    "__version__",
    "estimate_pass_at_k",
    "exact_pass_at_k",
    "exact_pass_hat_k",
    "pass_at_k",
    "pass_at_k_curve",
    "pass_at_k_variance",
    "pass_hat_k",
    "pass_hat_k_curve",
]
