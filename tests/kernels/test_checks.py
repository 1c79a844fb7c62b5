"""Bad input: a clear error before any kernel reads memory."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from passkcore.kernels import token_logprobs


def _ok() -> dict[str, Any]:
    return {"hidden": torch.randn(4, 8), "weight": torch.randn(10, 8), "targets": torch.tensor([0, 3, 9, 2])}


CASES = [
    ({"hidden": torch.randn(4, 7)}, ValueError, "hidden size differs"),
    ({"hidden": torch.randn(4)}, ValueError, r"hidden must be \[T, H\]"),
    ({"targets": torch.tensor([0, 3, 10, 2])}, ValueError, r"targets\[2\] = 10 is outside the vocabulary \[0, 10\)"),
    ({"targets": torch.tensor([0, -1, 1, 2])}, ValueError, r"targets\[1\] = -1"),
    ({"targets": torch.tensor([0, 1, 2])}, ValueError, "3 entries for 4 hidden rows"),
    ({"targets": torch.tensor([0.0, 1, 2, 3])}, TypeError, "integer tensor"),
    ({"hidden": torch.randn(4, 8, dtype=torch.float64)}, TypeError, "float16, bfloat16 or float32"),
    ({"hidden": torch.randn(4, 8).bfloat16()}, TypeError, "must share a dtype"),
    ({"temperature": 0.0}, ValueError, "temperature must be finite and > 0"),
    ({"temperature": -1.0}, ValueError, "temperature must be finite and > 0"),
    ({"temperature": float("nan")}, ValueError, "temperature"),
    ({"bias": torch.randn(9)}, ValueError, r"bias must be \[V\]"),
    ({"backend": "cuda"}, ValueError, "backend must be"),
]


@pytest.mark.parametrize(("change", "exc", "match"), CASES)
def test_bad_input(change: dict[str, Any], exc: type, match: str) -> None:
    args = _ok() | change
    kwargs = {k: args.pop(k) for k in ("temperature", "bias", "backend") if k in args}
    with pytest.raises(exc, match=match):
        token_logprobs(args["hidden"], args["weight"], args["targets"], **kwargs)


@pytest.mark.parametrize("where", ["hidden", "weight"])
def test_non_finite_values_are_named(where: str) -> None:
    args = _ok()
    args[where][1, 5] = float("inf") if where == "hidden" else float("nan")
    with pytest.raises(ValueError, match=rf"{where}\[1, 5\] is not finite"):
        token_logprobs(args["hidden"], args["weight"], args["targets"])


def test_non_finite_bias_is_named() -> None:
    args = _ok()
    bias = torch.zeros(10)
    bias[7] = float("-inf")
    with pytest.raises(ValueError, match=r"bias\[7\] is not finite \(-inf\)"):
        token_logprobs(args["hidden"], args["weight"], args["targets"], bias=bias)


def test_large_weight_checked_once_until_written() -> None:
    """The finite check of a large weight is cached per tensor version: an in-place write (a NaN put
    into the same tensor) is caught on the next call, as is a NaN in a fresh tensor."""
    weight = torch.randn((1 << 20) // 64 + 1, 64)  # past CACHED_NUMEL
    hidden, targets = torch.randn(3, 64), torch.tensor([0, 1, 2])
    token_logprobs(hidden, weight, targets)
    token_logprobs(hidden, weight, targets)  # cached
    weight[7, 3] = float("nan")
    with pytest.raises(ValueError, match=r"weight\[7, 3\] is not finite"):
        token_logprobs(hidden, weight, targets)
    fresh = weight.clone()
    with pytest.raises(ValueError, match=r"weight\[7, 3\] is not finite"):
        token_logprobs(hidden, fresh, targets)


def test_large_inference_mode_tensors_are_checked() -> None:
    """Tensors made under inference_mode have no version counter: a large hidden or weight made there
    is checked every call (a 2,048-token pack of H = 576 once crashed the version lookup)."""
    with torch.inference_mode():
        hidden = torch.randn(2048, 576)
        weight = torch.randn((1 << 20) // 576 + 1, 576)
        targets = torch.zeros(2048, dtype=torch.long)
        assert token_logprobs(hidden, weight, targets).shape == (2048,)
        weight[5, 1] = float("inf")
        with pytest.raises(ValueError, match=r"weight\[5, 1\] is not finite"):
            token_logprobs(hidden, weight, targets)
