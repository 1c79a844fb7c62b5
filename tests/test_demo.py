"""The whole study end to end on the embedded model, at toy size, and its resumption."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_tiny_demo_runs_and_resumes_to_the_same_report(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "passkcore.cli", "demo", "--out", str(out), "--arith", "3", "--code", "1", "--n", "2",
           "--max-tokens", "24", "--score-backend", "fused"]  # no second engine start in the suite (test_scoring)
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    html_path, json_path = out / "report" / "report.html", out / "report" / "report.json"
    assert f"report: {html_path}" in first.stdout and f"numbers: {json_path}" in first.stdout
    # Progress bars and the report paths; no engine log lines, on either stream.
    from tests.test_sampling import ENGINE_LINE

    assert not ENGINE_LINE.search(first.stdout + first.stderr), ENGINE_LINE.search(first.stdout + first.stderr)
    assert "verifying" in first.stdout and "Loading safetensors" not in first.stderr
    data = json.loads(json_path.read_text())
    assert data["models"] == ["base", "sharpened"] and data["problems"] == {"base": 4, "sharpened": 4}
    assert data["k"] == [1, 2] and len(data["crossings"]) == 1 and data["coverage"]["k"] == 2
    scorers = {(s["model"], s["scorer"]) for s in data["ppl"]["summary"]}
    assert {("base", "smollm2-135m"), ("sharpened", "smollm2-135m"), ("sharpened", "smollm2-135m.T0.3")} <= scorers
    assert all(s["scored"] == 8 for s in data["ppl"]["summary"])
    json_path.unlink()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(json_path.read_text()) == data  # every step skipped what was stored: same numbers
