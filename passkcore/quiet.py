"""Keeps the engines' INFO logs and progress bars (vLLM, transformers, Ray, tqdm) off the console.

`make demo` printed about 190 lines of engine logs between its own progress bars. Warnings and
errors still show: every logger stays at WARNING, vLLM's included, and vLLM's handler writes to
stderr instead of its default stdout, so stdout carries the commands' own output. vLLM reads its
settings from the environment once, when it is imported (and its engine-core process inherits
them), hence environment variables set before any engine is imported; ``--verbose`` sets none.
"""

from __future__ import annotations

import logging
import os

# Each variable is only a default: a user's own setting wins.
QUIET_ENV = {
    "VLLM_LOGGING_LEVEL": "WARNING",
    "VLLM_LOGGING_STREAM": "ext://sys.stderr",
    "TQDM_DISABLE": "1",  # tqdm >= 4.66 takes defaults from TQDM_* variables: vLLM's and HF's bars
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "warning",
    "RAY_DEDUP_LOGS": "1",
    "TOKENIZERS_PARALLELISM": "false",  # the fork warning of HF tokenizers, once per worker
}
QUIET_LOGGERS = ("vllm", "ray", "transformers", "torch", "triton", "datasets", "huggingface_hub", "filelock",
                 "urllib3", "httpx")


def quiet_engines(verbose: bool = False) -> dict[str, str]:
    """Sets the quiet defaults (environment and logger levels) unless ``verbose``; returns the
    variables it set. Call before vLLM, transformers or Ray is imported."""
    if verbose:
        return {}
    set_now = {}
    for name, value in QUIET_ENV.items():
        if name not in os.environ:
            os.environ[name] = value
            set_now[name] = value
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
    return set_now
