"""The study's report: figures (matplotlib), one self-contained HTML page and a JSON of every number.

Works on one or several sources, one benchmark each: run directories (curves, coverage, histograms,
gap, and perplexities and entropies when scores exist) or count files alone (the PPL section is then
marked absent).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

from passkcore._atomic import write_text_atomically
from passkcore.analysis import SourceLike
from passkcore.report.build import SCHEMA, build_data
from passkcore.report.figures import figures
from passkcore.report.findings import lookup
from passkcore.report.page import render_html

__all__ = ["SCHEMA", "build_data", "figures", "lookup", "render_html", "write_report"]


def write_report(source: Union[SourceLike, Sequence[SourceLike]], out: Union[str, Path], **kwargs: Any) -> tuple[Path, Path]:
    """Writes ``out/report.html`` (self-contained), ``out/report.json`` and the figures as PNG files;
    keyword arguments go to ``build_data`` (``base``, ``resamples``, ``seed``, ``benchmarks``,
    ``series``, ``series_k``...)."""
    data = build_data(source, **kwargs)
    figs = figures(data)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, png in figs.items():
        (out / f"{name}.png").write_bytes(png)
    json_path, html_path = out / "report.json", out / "report.html"
    write_text_atomically(json_path, json.dumps(data, indent=1))
    write_text_atomically(html_path, render_html(data, figs))
    return html_path, json_path
