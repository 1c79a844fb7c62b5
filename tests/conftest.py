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


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Idefics3 checkpoint with random weights, built once per session (tests/tiny_vlm.py)."""
    from tests.tiny_vlm import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm") / "model")


def make_image(color: tuple[int, int, int], size: tuple[int, int] = (64, 48), fmt: str = "PNG") -> bytes:
    """Encoded bytes of a one-colour image with a white square in a corner (PIL)."""
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, color)
    ImageDraw.Draw(image).rectangle([2, 2, 12, 12], fill=(255, 255, 255))
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()
