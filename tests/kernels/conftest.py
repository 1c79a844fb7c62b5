"""Without CUDA the Triton kernel runs in Triton's interpreter on CPU tensors; the interpreter is chosen
when the kernel is decorated, so the variable must be set before passkcore.kernels.logprob_triton loads."""

from __future__ import annotations

import os
from typing import Optional

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


def ground_truth(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, bias: Optional[torch.Tensor] = None,
                 temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """fp64 log-probs and entropy of the inputs as given (bf16 values upcast exactly)."""
    logits = hidden.double() @ weight.double().T
    if bias is not None:
        logits = logits + bias.double()
    logp = torch.log_softmax(logits / temperature, dim=-1)
    return logp.gather(1, targets.long()[:, None])[:, 0], -(logp.exp() * logp).sum(dim=-1)


def torch_path(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, bias: Optional[torch.Tensor] = None,
               temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """PyTorch's own path in the inputs' dtype (fp32, or bf16/fp16 logits), as people write it."""
    logits = hidden @ weight.T
    if bias is not None:
        logits = logits + bias.to(logits.dtype)
    logp = torch.log_softmax(logits / temperature, dim=-1)
    return logp.gather(1, targets.long()[:, None])[:, 0].float(), -(logp.exp() * logp).sum(dim=-1).float()
