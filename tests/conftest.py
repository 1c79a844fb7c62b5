from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MATH500 = ROOT / "data" / "math500_qwen2.5-7b_base_vs_simplerl.csv"


def ulp_distance(value: float, exact: Fraction) -> float:
    """How many ulps of the correctly rounded exact value separate it from `value`."""
    target = float(exact)  # Fraction -> float is correctly rounded, subnormals included
    if value == target:
        return 0.0
    return abs(value - target) / math.ulp(target)


@pytest.fixture
def math500_path() -> Path:
    return MATH500
