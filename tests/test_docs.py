"""README.md as a front page, links that lead somewhere, and generated sections that match the code."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
# Pages other branches write (integrations, visual reasoning, the sandbox's threat model): a link to one
# is allowed to dangle until it is merged, and is checked like any other once the file exists.
PENDING = {"docs/integrations.md", "docs/visual-reasoning.md", "docs/threat-model.md"}
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.S | re.M)


def load_layout():
    spec = importlib.util.spec_from_file_location("layout_tool", ROOT / "tools" / "layout.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prose(path: Path) -> str:
    """The file without fenced code blocks (a link inside code is not a link)."""
    return FENCE.sub("", path.read_text(encoding="utf-8"))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", prose(path), re.M)}


def test_readme_is_a_front_page_with_the_two_set_up_commands():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; at most 300 (move the rest to docs/)"
    text = "\n".join(lines)
    block = re.search(r"^```\n(make demo[^\n]*)\n(make test[^\n]*)\n```$", text, re.M)
    assert block, "README.md must show the two set-up commands, `make demo` then `make test`, in one block"
    targets = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M))
    assert {"demo", "test"} <= targets, f"the Makefile lacks a target README names: {targets}"


def links() -> list[tuple[str, str]]:
    found = []
    for page in [README, *DOCS]:
        for target in LINK.findall(prose(page)):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: are not checked here
                found.append((page.relative_to(ROOT).as_posix(), target))
    return found


def test_the_pages_link_each_other():
    # Guards the link check itself: a regex that matched nothing would pass every page.
    targets = {target.split("#")[0] for page, target in links() if page == "README.md"}
    assert {"docs/benchmarks.md", "docs/pipeline.md", "docs/verification.md", "docs/cli.md"} <= targets


@pytest.mark.parametrize(("page", "target"), links())
def test_every_relative_link_points_to_an_existing_file(page, target):
    path, _, anchor = target.partition("#")
    resolved = (ROOT / page).parent / path if path else ROOT / page
    name = resolved.resolve().relative_to(ROOT).as_posix() if resolved.resolve().is_relative_to(ROOT) else str(resolved)
    if name in PENDING and not resolved.exists():
        return
    assert resolved.exists(), f"{page}: link to {target} points to no file ({name})"
    if anchor and resolved.suffix == ".md":
        assert anchor in anchors(resolved), f"{page}: link to {target}: {name} has no heading with anchor #{anchor}"


@pytest.mark.parametrize("path", ["README.md", "docs/layout.md", "docs/cli.md"])
def test_generated_sections_match_the_code(path):
    layout = load_layout()
    assert path in layout.SECTIONS
    current, wanted = layout.expected(path)
    assert current == wanted, f"{path} is out of date: run .venv/bin/python tools/layout.py --write"


def test_layout_lists_every_module():
    layout = load_layout()
    listing = layout.module_listing()
    for top in layout.PACKAGES:
        for module in (ROOT / top).rglob("*.py"):
            assert f"`{module.name}`" in listing
            assert f"### `{module.parent.relative_to(ROOT).as_posix()}/`" in listing
    for source in (ROOT / "csrc").glob("*.[ch]pp"):
        assert f"- `{source.name}`: " in listing
    # HTML-like text outside code spans is escaped, code spans are kept as they are
    assert layout.markdown("register_<area>.cpp, ``x<y>``") == "register_&lt;area&gt;.cpp, ``x<y>``"
    # a section between markers is replaced; the hand-written text around it is kept
    begin, end = layout.marker("x")
    assert layout.render(f"a\n{begin}\nold\n{end}\nb\n", "x", "new", "f") == f"a\n{begin}\nnew\n{end}\nb\n"
    with pytest.raises(SystemExit, match="exactly one"):
        layout.render("no markers", "x", "new", "f")


def test_the_architecture_page_names_every_package():
    """docs/architecture.md is the design as built: a package added under passkcore/ must take its
    place in the parts table."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    packages = sorted(p.parent.name for p in (ROOT / "passkcore").glob("*/__init__.py"))
    assert len(packages) >= 7, packages
    missing = [name for name in packages if f"`passkcore/{name}/`" not in text and f"`{name}/`" not in text]
    assert not missing, f"docs/architecture.md does not place these packages: {missing}"
