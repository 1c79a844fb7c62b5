"""On a CUDA device: the compiled Triton kernel against the fp64 ground truth and the naive path."""

from __future__ import annotations

import pytest
import torch

from tests.kernels.conftest import ground_truth, torch_path

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize(("T", "H", "V"), [(255, 576, 50257), (4099, 896, 151936), (1, 64, 49152)])
def test_compiled_kernel_matches(dtype: torch.dtype, T: int, H: int, V: int) -> None:
    from passkcore.kernels import token_logprobs

    g = torch.Generator(device="cuda").manual_seed(0)
    hidden = (torch.randn(T, H, device="cuda", generator=g)).to(dtype)
    weight = (torch.randn(V, H, device="cuda", generator=g) / H**0.5 * 2).to(dtype)
    targets = torch.randint(0, V, (T,), device="cuda", generator=g)
    lp, ent = token_logprobs(hidden, weight, targets, return_entropy=True)
    ref_lp, ref_ent = ground_truth(hidden, weight, targets)
    pt_lp, pt_ent = torch_path(hidden, weight, targets)
    slack = 1e-5 if dtype == torch.float32 else 1e-2
    assert (lp.double() - ref_lp).abs().max() <= (pt_lp.double() - ref_lp).abs().max() + slack
    assert (ent.double() - ref_ent).abs().max() <= (pt_ent.double() - ref_ent).abs().max() + slack
    again = token_logprobs(hidden, weight, targets)
    assert torch.equal(again, lp)
