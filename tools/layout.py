"""The generated sections of the docs, so that none of them can go stale: the package layout
(README.md's "Layout" section, one line per package; docs/layout.md, one line per module and per
C++ file of csrc/) and the command-line reference (docs/cli.md, every command's ``--help``).

    python tools/layout.py                    print the module listing (standard library only)
    .venv/bin/python tools/layout.py --write  rewrite every generated section in place
    .venv/bin/python tools/layout.py --check  exit 1, naming each file whose section differs

A section sits between ``<!-- BEGIN GENERATED name: tools/layout.py -->`` and
``<!-- END GENERATED name -->``; everything outside the markers is hand-written and left alone.
Modules are read with ``ast`` (nothing is imported) and described by the first sentence of their
docstring; the CLI reference imports ``passkcore.cli.build_parser``, hence the venv's Python.
tests/test_docs.py fails when a file differs from what this script generates.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("passkcore", "kernels")
NATIVE = "csrc"  # the C++ core: listed by each file's leading comment
# Folders that hold no Python package: described here, checked to exist.
OTHER_FOLDERS = {
    "csrc/": "the C++ core, built into `passkcore._core` (pybind11; typed by `passkcore/_core.pyi`)",
    "tests/": "pytest, strict (warnings are errors), mirroring the source tree",
    "benches/": "pytest-benchmark: each target a ratio against a peer or a bound measured in the same run",
    "data/": "real and synthetic count files used by the examples and tests (see `data/README.md`)",
    "docs/": "these pages and their figures",
    "tools/": "install helpers, measurement scripts and this layout generator",
}
CLI_WIDTH = 100  # help text wrapped at a fixed width, whatever the terminal


def marker(name: str) -> tuple[str, str]:
    return f"<!-- BEGIN GENERATED {name}: tools/layout.py -->", f"<!-- END GENERATED {name} -->"


def markdown(text: str) -> str:
    """``<`` and ``>`` outside code spans escaped, so ``register_<area>.cpp`` is not read as HTML."""
    parts = re.split(r"(`+[^`]*`+)", text)
    return "".join(p if i % 2 else p.replace("<", "&lt;").replace(">", "&gt;") for i, p in enumerate(parts))


def summary(path: Path) -> str:
    """The first sentence of a module's docstring, unwrapped (the first line alone is often cut
    mid-sentence by wrapping); ``(no docstring)`` where there is none."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    if not doc:
        return "(no docstring)"
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    match = re.search(r"(?<=[.!?])\s+(?=[A-Z`(])", paragraph)
    return markdown(paragraph[: match.start()] if match else paragraph)


def comment_summary(path: Path) -> str:
    """The first sentence of a C++ file's leading ``//`` comment paragraph."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if not text.startswith("//") or not text[2:].strip():
            break
        lines.append(text[2:].strip())
    paragraph = " ".join(lines)
    match = re.search(r"(?<=[.!?])\s+(?=[A-Z`(])", paragraph)
    return markdown(paragraph[: match.start()] if match else paragraph) or "(no leading comment)"


def package_dirs() -> list[Path]:
    """Every package (a folder with ``__init__.py``) under passkcore/ and kernels/, in path order."""
    found = []
    for top in PACKAGES:
        found += [p.parent for p in (ROOT / top).rglob("__init__.py") if "__pycache__" not in p.parts]
    return sorted(found, key=lambda p: (PACKAGES.index(p.relative_to(ROOT).parts[0]), p.relative_to(ROOT).parts))


def modules(package: Path) -> list[Path]:
    """The package's own modules, ``__init__.py`` first; subpackages are listed on their own."""
    files = sorted(p for p in package.glob("*.py"))
    return sorted(files, key=lambda p: (p.name != "__init__.py", p.name))


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def module_listing() -> str:
    """docs/layout.md's section: a heading per package, one line per module."""
    lines = []
    for package in package_dirs():
        lines += ["", f"### `{rel(package)}/`", ""]
        lines += [f"- `{p.name}`: {summary(p)}" for p in modules(package)]
    lines += ["", f"### `{NATIVE}/`", ""]
    lines += [f"- `{p.name}`: {comment_summary(p)}" for p in native_sources()]
    return "\n".join(lines[1:])


def native_sources() -> list[Path]:
    return sorted(p for p in (ROOT / NATIVE).iterdir() if p.suffix in (".cpp", ".hpp"))


def package_listing() -> str:
    """README's section: one line per package (its ``__init__`` docstring), then the other folders."""
    lines = []
    for package in package_dirs():
        count = len(modules(package))
        lines.append(f"- `{rel(package)}/` ({count} module{'s' if count != 1 else ''}): {summary(package / '__init__.py')}")
    for folder, text in OTHER_FOLDERS.items():
        if not (ROOT / folder).is_dir():
            raise SystemExit(f"tools/layout.py: {folder} is described but does not exist; update OTHER_FOLDERS")
        lines.append(f"- `{folder}`: {text}")
    return "\n".join(lines)


def cli_reference() -> str:
    """docs/cli.md's section: ``passk --help`` and each command's ``--help``, in parser order."""
    os.environ["COLUMNS"] = str(CLI_WIDTH)  # argparse wraps at the terminal's width
    os.environ["NO_COLOR"] = "1"  # Python 3.14's argparse colours help otherwise
    try:
        from passkcore.cli import build_parser
    except ImportError as exc:  # the CLI needs the built package: the venv's Python
        raise SystemExit(f"tools/layout.py: docs/cli.md needs passkcore importable ({exc}); run .venv/bin/python tools/layout.py") from exc

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    blocks = ["### `passk --help`", "", "```text", parser.format_help().rstrip(), "```"]
    for name, sub in commands.items():
        blocks += ["", f"### `passk {name}`", "", "```text", sub.format_help().rstrip(), "```"]
        # A command with verbs of its own (passk audit export|apply|...): each verb's help too.
        verbs = next((a for a in sub._actions if isinstance(a, argparse._SubParsersAction)), None)
        for verb, inner in (verbs.choices.items() if verbs else []):
            blocks += ["", f"### `passk {name} {verb}`", "", "```text", inner.format_help().rstrip(), "```"]
    return "\n".join(blocks)


SECTIONS: dict[str, tuple[str, Callable[[], str]]] = {
    "README.md": ("layout", package_listing),
    "docs/layout.md": ("modules", module_listing),
    "docs/cli.md": ("cli", cli_reference),
}


def render(text: str, name: str, body: str, path: str) -> str:
    """``text`` with the section between ``name``'s markers replaced by ``body``."""
    begin, end = marker(name)
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise SystemExit(f"tools/layout.py: {path} needs exactly one '{begin}' ... '{end}' pair")
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    return f"{head}{begin}\n{body}\n{end}{tail}"


def expected(path: str) -> tuple[str, str]:
    """(the file as it is, the file as this script generates it)."""
    name, make = SECTIONS[path]
    text = (ROOT / path).read_text(encoding="utf-8")
    return text, render(text, name, make(), path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/layout.py", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite every generated section in place")
    mode.add_argument("--check", action="store_true", help="exit 1 if a generated section is out of date")
    args = parser.parse_args(argv)
    if not (args.write or args.check):
        print(module_listing())
        return 0
    stale = []
    for path in SECTIONS:
        current, wanted = expected(path)
        if current != wanted:
            stale.append(path)
            if args.write:
                (ROOT / path).write_text(wanted, encoding="utf-8")
    verb = "rewrote" if args.write else "out of date (run: .venv/bin/python tools/layout.py --write)"
    for path in stale:
        print(f"{verb}: {path}", file=sys.stderr)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
