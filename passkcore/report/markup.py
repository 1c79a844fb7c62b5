"""The page's markup helpers: numbers bound to their report.json paths, inlined figures, escaped text.

Every text the page shows goes through ``html.escape`` (``esc``): model-written text above all, which is
hostile content (a sample may hold ``<script>``, ``onerror=`` or ``</textarea>``).
"""

from __future__ import annotations

import base64
import html
import json
from typing import Any


def esc(text: Any) -> str:
    """Text as HTML text: ``&``, ``<``, ``>`` and both quotes escaped (safe in elements and attributes)."""
    return html.escape(str(text), quote=True)


def num(key: str, value: Any, fmt: str = "{:.4f}") -> str:
    """A number bound to its JSON path: the browser test compares data-value with report.json."""
    if value is None:
        return f'<span data-key="{esc(key)}" data-value="null">-</span>'
    text = fmt.format(value) if isinstance(value, float) else str(value)
    return f'<span data-key="{esc(key)}" data-value="{esc(json.dumps(value))}">{text}</span>'


def img(name: str, png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<figure><img id="fig-{name}" alt="{esc(alt)}" src="data:image/png;base64,{data}"></figure>'
