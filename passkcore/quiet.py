"""Keeps the engines' logs and progress bars (vLLM, torch, transformers, Ray, tqdm) off the console.

`make demo` printed 188 lines of engine output on stdout (vLLM INFO lines, and ~110 WARNING lines
such as one "Attempted to load weight ... float32 into bfloat16" per weight) and a dozen on stderr
(torch's NUMA note, checkpoint-loading bars, deprecation warnings from vLLM's own code) between its
progress bars. Quiet, the engines log errors only; passkcore's own warnings, Python warnings from
everything else and every error still show, and ``--verbose`` sets nothing. vLLM and torch read these
settings from the environment when they are imported, in every engine process they start (the
engine core and its workers inherit the environment), so they are set before any engine is imported.
vLLM configures its logging lazily, so its import-time warning ("Triton is installed, but doesn't
include CPU backend") reaches Python's last-resort handler in every process that imports it. Engine
processes are spawned: they import the parent's main module (``passkcore.cli``, which imports this
module) before vLLM, so the level is set here, at import, from the marker the parent left.
"""

from __future__ import annotations

import logging
import os
import warnings

# Each variable is only a default: a user's own setting wins.
QUIET_ENV = {
    "PASSK_QUIET": "1",  # read at import in spawned engine processes (see the module's docstring)
    "VLLM_LOGGING_LEVEL": "ERROR",
    "VLLM_LOGGING_STREAM": "ext://sys.stderr",  # its errors beside the others, stdout for our output
    "TORCH_CPP_LOG_LEVEL": "ERROR",  # c10 warnings of the engine processes ("NUMA binding: ...")
    "TQDM_DISABLE": "1",  # tqdm >= 4.66 takes defaults from TQDM_* variables: vLLM's loading bars
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # transformers' "Loading weights" bar
    "TRANSFORMERS_VERBOSITY": "warning",  # its default, kept when a library lowers it
    "TOKENIZERS_PARALLELISM": "false",  # HF tokenizers' fork warning, once per worker
}
# Python warnings that vLLM's own code raises on every run (in its engine processes too, hence
# PYTHONWARNINGS, which child interpreters read at start): nothing a user can act on.
ENGINE_WARNINGS = (
    ("`torch.distributed.reduce_op` is deprecated", FutureWarning),  # vllm/triton_utils/dispatcher.py
    ("resource_tracker", UserWarning),  # vLLM's engine leaves a shared-memory segment to the tracker
)
# The engines log errors only; the libraries passkcore calls directly keep their warnings.
QUIET_LOGGERS = {"vllm": logging.ERROR, "ray": logging.ERROR, "triton": logging.ERROR, "torch": logging.WARNING,
                 "transformers": logging.WARNING, "huggingface_hub": logging.WARNING, "httpx": logging.WARNING}


def _quiet_loggers() -> None:
    for name, level in QUIET_LOGGERS.items():
        logger = logging.getLogger(name)
        if logger.level < level:
            logger.setLevel(level)


def quiet_engines(verbose: bool = False) -> dict[str, str]:
    """Sets the quiet defaults (environment and logger levels) unless ``verbose``; returns the
    variables it set. Call before vLLM, transformers or Ray is imported."""
    if verbose:
        # Our own marker, inherited from a quiet parent, was applied at import: undo it, engines log.
        if os.environ.pop("PASSK_QUIET", None) is not None:
            for name in QUIET_LOGGERS:
                logging.getLogger(name).setLevel(logging.NOTSET)
        return {}
    set_now = {name: value for name, value in QUIET_ENV.items() if name not in os.environ}
    filters = ",".join(f"ignore:{message}:{category.__name__}" for message, category in ENGINE_WARNINGS)
    if filters not in os.environ.get("PYTHONWARNINGS", ""):
        set_now["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), filters]))
    os.environ.update(set_now)
    for message, category in ENGINE_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    # Before vLLM configures its own handler its logger has none: Python's last-resort handler would
    # print its import-time warnings ("Triton is installed, but doesn't include CPU backend").
    _quiet_loggers()
    return set_now


if os.environ.get("PASSK_QUIET") == "1":
    _quiet_loggers()

