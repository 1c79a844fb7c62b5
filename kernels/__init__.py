"""Fused log-prob head kernels (Triton on CUDA, a CPU twin otherwise), shipped as ``passkcore.kernels``."""

__all__: list[str] = []
