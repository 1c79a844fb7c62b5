"""Loads the compiled core with an error that says how to get it."""

from __future__ import annotations

try:
    from passkcore import _core as core
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise ImportError(
        "passkcore's compiled core (passkcore._core) is missing or failed to load: "
        f"{exc}. Build it with `make install` (or `pip install -e .[dev]`) from the repository root; "
        "importing the source folder without building it does not work."
    ) from exc

__all__ = ["core"]
