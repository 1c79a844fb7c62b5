"""What every ``passk`` command shares: list flags, the executor flags, problem-file fields, progress.

List flags take their values one way in every command: a comma-separated value, the flag repeated
(``--benchmark A --benchmark B``, also between positionals), or, as before, several values after one
flag (``--temperature 1.0 0.3 RUN``: ``expand_lists`` stops at the first value that is not a number).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Optional

from passkcore.quiet import quiet_engines
from passkcore.scoring import BACKENDS, DEFAULT_BACKEND

LOCAL = "local"
# How ``expand_lists`` reads the values after a list flag given once: numbers while they parse as
# numbers, names up to the next option (the flags that took several values before), or one value.
NUMBERS, NAMES, ONE = "numbers", "names", "one"


class FlagValueError(ValueError):
    """A list flag's value that does not convert; ``prog`` names the command (``passk estimate``)."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog


class ListAction(argparse.Action):
    """Appends the comma-separated values of each occurrence, converted by ``item`` (int, float, str);
    the value None until the flag is given."""

    def __init__(self, option_strings: Sequence[str], dest: str, item: Callable[[str], Any] = str,
                 kind: str = ONE, **kwargs: Any) -> None:
        self.item, self.kind = item, kind
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: Optional[str] = None) -> None:
        items = list(getattr(namespace, self.dest, None) or [])
        for part in str(values).split(","):
            part = part.strip()
            if not part:
                continue
            try:
                items.append(self.item(part))
            except ValueError:
                kinds: dict[Any, str] = {int: "an integer", float: "a number"}
                kind = kinds.get(self.item, "valid")
                raise FlagValueError(parser.prog, f"{self.option_strings[0]}: {part!r} is not {kind}") from None
        setattr(namespace, self.dest, items)


def add_list(p: argparse.ArgumentParser, *flags: str, item: Callable[[str], Any] = str, kind: str = ONE,
             **kwargs: Any) -> None:
    """A list flag (see the module's notes); ``kind`` says how values after one flag are read."""
    p.add_argument(*flags, action=ListAction, item=item, kind=kind, **kwargs)


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def sub_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """{command: its parser}."""
    for action in parser._actions:  # argparse keeps its sub-parsers here; no public accessor exists
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def list_kinds(parser: argparse.ArgumentParser) -> dict[str, dict[str, str]]:
    """{command: {option string: kind}} of every list flag, read from the parsers."""
    return {name: {flag: a.kind for a in sub._actions if isinstance(a, ListAction) for flag in a.option_strings}
            for name, sub in sub_parsers(parser).items()}


def option_arity(parser: argparse.ArgumentParser) -> dict[str, dict[str, int]]:
    """{command: {option string: how many values it takes}}, for options that take exactly 0 or 1
    (after ``expand_lists``, a list flag takes one value per occurrence)."""
    out: dict[str, dict[str, int]] = {}
    for name, sub in sub_parsers(parser).items():
        arity: dict[str, int] = {}
        for a in sub._actions:
            n = 1 if isinstance(a, ListAction) or a.nargs is None else a.nargs if isinstance(a.nargs, int) else None
            if n is not None and n <= 1:
                arity.update(dict.fromkeys(a.option_strings, n))
        out[name] = arity
    return out


def positionals_first(argv: Sequence[str], arity: dict[str, dict[str, int]]) -> list[str]:
    """Options of fixed arity (and their values) moved after the positionals, so that positionals and
    options may alternate (``a.csv --benchmark A b.csv --benchmark B``): argparse reads one run of
    positionals. An option of variable arity (``--ray [ADDRESS]``) stays where it is."""
    argv = list(argv)
    command = next((i for i, a in enumerate(argv) if a in arity), None)
    if command is None:
        return argv
    known = arity[argv[command]]
    head, tail, i = argv[:command + 1], [], command + 1
    while i < len(argv):
        token = argv[i]
        if token == "--":
            head.extend(argv[i:])
            break
        n = 0 if "=" in token and token.split("=", 1)[0] in known else known.get(token)
        if n is None or not token.startswith("-"):
            head.append(token)
            i += 1
            continue
        tail.extend(argv[i:i + 1 + n])
        i += 1 + n
    return head + tail


def expand_lists(argv: Sequence[str], kinds: dict[str, dict[str, str]]) -> list[str]:
    """``--flag a b`` as ``--flag a --flag b`` where today's syntax took several values after one flag:
    numbers while they parse as numbers; names (``--benchmark``, ``--series``) up to the next option,
    unless the flag is repeated (then each occurrence takes one value, so names and positionals can
    alternate)."""
    argv = list(argv)
    command = next((i for i, a in enumerate(argv) if a in kinds), None)
    if command is None:
        return argv
    flags = kinds[argv[command]]
    out, i = argv[:command + 1], command + 1
    while i < len(argv):
        token = argv[i]
        out.append(token)
        i += 1
        if token == "--":
            out.extend(argv[i:])
            break
        kind = flags.get(token)
        if kind is None or kind == ONE or i >= len(argv):
            continue
        out.append(argv[i])
        i += 1
        repeated = argv.count(token) > 1
        while i < len(argv) and not argv[i].startswith("--"):
            more = _is_number(argv[i]) if kind == NUMBERS else not repeated
            if not more:
                break
            out.extend([token, argv[i]])
            i += 1
    return out


@contextmanager
def progress_bar(description: str, unit: str) -> Iterator[Callable[[int, int], None]]:
    """A rich bar with rate and ETA; yields update(done, total)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(description, total=None, rate="")
        first: dict[str, float] = {}

        def update(done: int, total: int) -> None:
            now = time.monotonic()
            first.setdefault("t", now)
            first.setdefault("done", done)
            elapsed = now - first["t"]
            rate = (done - first["done"]) / elapsed if elapsed > 0 else 0.0
            bar.update(task, completed=done, total=total, rate=f"{rate:.1f} {unit}/s")

        yield update


def cluster_of(args: argparse.Namespace) -> Any:
    """The executor ``--ray [ADDRESS]`` asks for: a Ray ``Cluster``, or None (this process)."""
    if args.ray is None:
        return None
    from passkcore.pipeline.executors import Cluster

    address = None if args.ray == LOCAL else args.ray
    return Cluster(address=address, replicas=getattr(args, "replicas", None),
                   tensor_parallel_size=getattr(args, "tensor_parallel_size", 1),
                   cpus_per_replica=getattr(args, "cpus_per_replica", 1),
                   verify_workers=getattr(args, "workers", None))


def print_stage_stats(stats: Any) -> None:
    """Per-stage throughput across the cluster."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{stats.stage} on Ray: {stats.workers} workers")
    for col in ("items", "resumed", "rows", "tokens", "wall s", "rows/s", "tokens/s", "worker busy s"):
        table.add_column(col, justify="right")
    table.add_row(str(stats.items), str(stats.resumed), str(stats.rows), str(stats.tokens), f"{stats.seconds:.1f}",
                  f"{stats.rows_per_s:.2f}", f"{stats.tokens_per_s:.1f}", f"{stats.busy_seconds:.1f}")
    Console().print(table)


def add_verbosity(p: argparse.ArgumentParser, func: Callable[[argparse.Namespace], int]) -> None:
    """``--verbose``, and the command run with the engines quiet unless it is given."""
    p.add_argument("--verbose", action="store_true",
                   help="show the engines' own logs and progress bars (vLLM, transformers, Ray, tqdm)")

    def run(args: argparse.Namespace) -> int:
        quiet_engines(args.verbose)
        return func(args)

    p.set_defaults(func=run)


def add_problem_fields(p: argparse.ArgumentParser) -> None:
    """The field mapping of a published benchmark file (``passkcore.problem_files``)."""
    p.add_argument("--id-field", help="problem file: the field holding the problem id (default id; presets differ)")
    p.add_argument("--prompt-field", help="problem file: the field holding the problem text (default prompt)")
    p.add_argument("--answer-field", help="problem file: the field holding the reference answer (default answer)")
    p.add_argument("--image-field", help="problem file: the field holding the problem's image(s): a path relative "
                                         "to the file, bytes or a data URI (default none; presets differ)")
    p.add_argument("--fields", metavar="MAPPING.json",
                   help='problem file: a JSON mapping {"preset"?, "id", "prompt", "answer", "answer_format", '
                        '"tests", "entry_point", "kind"}')


def problem_fields(args: argparse.Namespace) -> Any:
    """The mapping given by add_problem_fields' flags, or None."""
    fields = {"mapping_file": args.fields, "id": args.id_field, "prompt": args.prompt_field,
              "answer": args.answer_field, "images": getattr(args, "image_field", None)}
    return {k: v for k, v in fields.items() if v is not None} or None


def add_ray(p: argparse.ArgumentParser, replicas: bool = False) -> None:
    p.add_argument("--ray", nargs="?", const=LOCAL, default=None, metavar="ADDRESS",
                   help="run on Ray: alone, a local Ray instance; with an address (auto, host:6379, "
                        "ray://host:10001), that cluster")
    if replicas:
        p.add_argument("--replicas", type=int, help="with --ray: model replicas (default: one per GPU, 1 without)")
        p.add_argument("--cpus-per-replica", type=int, default=1, help="with --ray: CPU threads per replica")


def add_backend(p: argparse.ArgumentParser) -> None:
    """``--backend`` of ``passk score`` and ``passk demo`` (``--score-backend``: the demo's old name)."""
    p.add_argument("--backend", "--score-backend", dest="backend", choices=BACKENDS, default=DEFAULT_BACKEND,
                   help=f"scoring path (default {DEFAULT_BACKEND}: exact fp32, packed, fused head; on CPU a "
                        "packed Llama-family decoder computing a shared prompt once, 1.2x vLLM's prompt_logprobs "
                        "on unique prompts and more with n responses per prompt, under 1.5 GiB); vllm_fused: "
                        "vLLM backbone + fused head, its engine up in 20-70 s, 4.4-5.5 GiB measured with its KV "
                        "cache; torch: padded reference; vllm: prompt_logprobs")
