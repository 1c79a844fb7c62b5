"""What a ``passk`` command needs beyond the core dependencies, checked before it does any work.

``estimate``, ``coverage``, ``counts``, ``report``, ``ppl``, ``bench`` and ``import`` of verdicts run on the
core dependencies; the others name the extras they need (``passkcore.extras``), and ``main`` refuses a
command whose extras are missing with exit status 2 and one line saying what to install.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional

from passkcore.extras import missing_message

# The extras each command always needs.
COMMAND_EXTRAS: dict[str, tuple[str, ...]] = {
    "sample": ("sampling", "vllm"),
    "score": ("sampling",),
    "demo": ("sampling", "kernels", "vllm", "verify"),
}
FUSED_BACKENDS = ("fused", "vllm_fused")  # scoring backends that run the fused head (passkcore.kernels)


def needed_extras(args: argparse.Namespace) -> list[str]:
    """The extras ``args``' command needs: its own, the scoring backend's, Ray's with ``--ray``, and the
    verify extra where math answers will be verified."""
    extras = list(COMMAND_EXTRAS.get(args.command, ()))
    backend = str(getattr(args, "backend", "") or "")
    if args.command in ("score", "demo") and backend in FUSED_BACKENDS:
        extras.append("kernels")
    if args.command in ("score", "demo") and backend.startswith("vllm"):
        extras.append("vllm")
    if getattr(args, "ray", None) is not None and args.command != "counts":  # counts ignores --ray
        extras.append("ray")
    if args.command == "verify" and run_has_math(Path(args.run)):
        extras.append("verify")
    if args.command == "import" and verifies_texts(args):
        extras.append("verify")
    if args.command == "audit" and getattr(args, "verb", None) == "judge":  # the judge samples with vLLM
        extras.extend(("sampling", "vllm"))
    return list(dict.fromkeys(extras))


def run_has_math(run: Path) -> bool:
    """Whether RUN/problems.jsonl holds a math problem. A missing or unreadable file is the command's own
    error to report, so it counts as none here."""
    try:
        with (run / "problems.jsonl").open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if isinstance(row, dict) and row.get("kind", "math") == "math":
                    return True
    except OSError:
        return False
    return False


def verifies_texts(args: argparse.Namespace) -> bool:
    """Imports that re-verify every response with math-verify: lm-eval (``--verify math``) and lighteval
    texts (not ``--metric``). Other formats verify only rows with no verdict but an answer, found as read."""
    if args.format == "lm-eval":
        return bool(args.verify == "math")
    return bool(args.format == "lighteval" and getattr(args, "metric", None) is None)


def missing_for(args: argparse.Namespace) -> Optional[str]:
    """One line saying what ``args``' command lacks and how to install it, or None."""
    extras = needed_extras(args)
    return missing_message(*extras, by="this command") if extras else None
