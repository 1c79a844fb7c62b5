"""Fused log-prob heads, shipped as ``passkcore.kernels``.

``token_logprobs`` gives log p(target | hidden) under ``softmax((hidden @ weight.T + bias) / temperature)``
for every row, and optionally the entropy of that distribution, without materialising the [T, V] logits:
the Triton kernel on CUDA tensors, the numba CPU twin otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Union

from passkcore.extras import needs_extra

with needs_extra("kernels", by=__name__):
    import torch

from passkcore.kernels._checks import check_inputs, check_temperature

__all__ = ["token_logprobs", "token_logprobs_at", "naive_token_logprobs", "chunked_token_logprobs"]

Backend = Optional[str]


def token_logprobs(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    bias: Optional[torch.Tensor] = None,
    temperature: float = 1.0,
    return_entropy: bool = False,
    backend: Backend = None,
) -> Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """fp32 [T] log-probs of ``targets`` (and, with ``return_entropy``, the fp32 [T] entropy).

    ``hidden`` [T, H] and ``weight`` [V, H] share a float dtype (fp16, bf16 or fp32; the weight may be
    tied to the input embedding); ``targets`` [T] integer in [0, V). ``backend=None`` picks "triton" for
    CUDA tensors and "cpu" otherwise. Inputs are checked before any kernel reads them.
    """
    if backend not in (None, "triton", "cpu"):
        raise ValueError(f"backend must be None, 'triton' or 'cpu', got {backend!r}")
    check_inputs(hidden, weight, targets, bias, temperature)
    chosen = backend or ("triton" if hidden.is_cuda else "cpu")
    if chosen == "triton":
        from passkcore.kernels.logprob_triton import token_logprobs_triton as run
    else:
        from passkcore.kernels.logprob_cpu import token_logprobs_cpu as run
    logprobs, entropy = run(hidden, weight, targets, bias, float(temperature), return_entropy)
    if return_entropy:
        assert entropy is not None
        return logprobs, entropy
    return logprobs


def token_logprobs_at(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    temperatures: Sequence[float],
    *,
    bias: Optional[torch.Tensor] = None,
    return_entropy: bool = False,
    backend: Backend = None,
) -> list[tuple[torch.Tensor, Optional[torch.Tensor]]]:
    """``token_logprobs`` at each of ``temperatures``: per temperature, (fp32 [T] log-probs, fp32 [T]
    entropy or None). On CPU one pass of logits tiles serves every temperature (the tile product is
    ~90% of the head's cost); the Triton kernel runs once per temperature."""
    if backend not in (None, "triton", "cpu"):
        raise ValueError(f"backend must be None, 'triton' or 'cpu', got {backend!r}")
    temperatures = list(temperatures)
    if not temperatures:
        raise ValueError("temperatures is empty")
    check_inputs(hidden, weight, targets, bias, temperatures[0])  # the tensors once: a pass over hidden each
    for temperature in temperatures[1:]:
        check_temperature(temperature)
    if (backend or ("triton" if hidden.is_cuda else "cpu")) == "triton":
        from passkcore.kernels.logprob_triton import token_logprobs_triton

        return [token_logprobs_triton(hidden, weight, targets, bias, float(t), return_entropy) for t in temperatures]
    from passkcore.kernels.logprob_cpu import token_logprobs_cpu_at

    return token_logprobs_cpu_at(hidden, weight, targets, bias, [float(t) for t in temperatures], return_entropy)


def naive_token_logprobs(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, *,
                         bias: Optional[torch.Tensor] = None, temperature: float = 1.0) -> torch.Tensor:
    """The straightforward reference: [T, V] fp32 logits, log_softmax, gather."""
    logits = hidden.float() @ weight.float().T
    if bias is not None:
        logits = logits + bias.float()
    return torch.log_softmax(logits / temperature, dim=-1).gather(1, targets.long()[:, None])[:, 0]


def chunked_token_logprobs(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, *,
                           chunk: int = 1024, bias: Optional[torch.Tensor] = None,
                           temperature: float = 1.0) -> torch.Tensor:
    """Plain chunked torch (the usual memory fix): the naive path on blocks of ``chunk`` tokens."""
    parts = [naive_token_logprobs(hidden[i:i + chunk], weight, targets[i:i + chunk], bias=bias, temperature=temperature)
             for i in range(0, hidden.shape[0], chunk)]
    return torch.cat(parts) if parts else torch.empty(0)
