"""The report: numbers, figures, and a real browser loading the self-contained page."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from passkcore.cli import main
from passkcore.report import write_report
from tests.test_cli import PUBLISHED

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=5000"]


@pytest.fixture(scope="module")
def math500_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from tests.conftest import MATH500

    return write_report(MATH500, tmp_path_factory.mktemp("report"), resamples=1000)


def test_counts_only_report_reproduces_the_study(math500_report: tuple[Path, Path]) -> None:
    html_path, json_path = math500_report
    data = json.loads(json_path.read_text())
    assert data["models"] == ["base", "simplerl"] and data["k"] == list(range(1, 129))
    for model, values in PUBLISHED.items():
        got = [data["curves"][model]["pass_at_k"][k - 1] for k in (1, 2, 4, 8, 16, 32, 64, 128)]
        assert got == pytest.approx(values, rel=1e-15, abs=0)
    assert data["coverage"]["pairs"] == [{"a": "base", "b": "simplerl", "both": 462, "only_a": 19, "only_b": 3, "neither": 16}]
    (cross,) = data["crossings"]
    assert cross["a"] == "base" and 8 < cross["k"] <= 16
    assert data["gaps"][0]["k_max"] == 128 and data["gaps"][0]["gap"] == pytest.approx(0.779328125 - 0.962)
    assert data["ppl"] is None and 'id="ppl-absent"' in html_path.read_text()
    assert sum(data["histograms"]["base"]["counts"]) == 500
    assert (html_path.parent / "pass_at_k.png").stat().st_size > 10_000


class _Numbers(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self.texts: dict[str, str] = {}
        self.body: dict[str, str] = {}
        self.images: list[dict[str, str]] = []
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, Any]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.body = a
        if tag == "img":
            self.images.append(a)
        if "data-key" in a:
            self.values[a["data-key"]] = a["data-value"]
            self._open.append(a["data-key"])

    def handle_data(self, data: str) -> None:
        if self._open:
            self.texts[self._open[-1]] = self.texts.get(self._open[-1], "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "span" and self._open:
            self._open.pop()


def _lookup(data: Any, key: str) -> Any:
    for part in key.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make install adds it)")
def test_report_in_a_real_browser(math500_report: tuple[Path, Path], tmp_path: Path) -> None:
    html_path, json_path = math500_report
    data = json.loads(json_path.read_text())
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run([CHROMIUM, *FLAGS, *profile, "--dump-dom", html_path.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    page = _Numbers()
    page.feed(dom)
    # Every figure decoded and laid out by the browser.
    assert len(page.images) == 2 and page.body.get("data-images-rendered") == "2"
    assert all(int(img["data-rendered-width"]) > 500 for img in page.images)
    # Every number in the page is the number in report.json.
    assert len(page.values) > 40
    for key, value in page.values.items():
        expected = _lookup(data, key)
        assert json.loads(value) == expected, key
        text = page.texts[key]
        if isinstance(expected, float) and "%" not in text:
            assert float(text) == pytest.approx(expected, abs=5e-5), key
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *FLAGS, *profile, "--window-size=1200,1600", f"--screenshot={shot}", html_path.as_uri()],
                   capture_output=True, timeout=120, check=True)
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)
    assert pixels.shape[:2] == (1600, 1200)
    assert float(np.std(pixels[..., :3])) > 0.05  # not blank: text, tables and the curve figure


def test_report_cli_and_bad_base(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import MATH500

    assert main(["report", str(MATH500), "--out", str(tmp_path), "--bootstrap", "200"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "report.html") in out and str(tmp_path / "report.json") in out
    assert main(["report", str(MATH500), "--out", str(tmp_path), "--base", "nope"]) == 2
    assert "--base 'nope' is not among the models" in capsys.readouterr().err
    import os

    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        assert main(["report", str(MATH500), "--bootstrap", "100"]) == 0
    finally:
        os.chdir(cwd)
    assert (tmp_path / "report" / "report.json").is_file()


def test_report_with_perplexities(tmp_path: Path) -> None:
    from passkcore.pipeline.run import write_shard
    from passkcore.runs import verify_run
    from passkcore.scoring import SCORE_SCHEMA
    from tests.test_runs import _fake_run

    _fake_run(tmp_path, {"base": 1, "sharpened": 3})
    verify_run(tmp_path)
    import pyarrow as pa

    rows = [{"model": m, "scorer": s, "problem_id": "p", "sample_index": i, "num_tokens": 3, "sum_logprob": -3.0 * v,
             "mean_logprob": -v, "ppl": float(np.exp(v)), "mean_entropy": 1.0, "status": "ok"}
            for m in ("base", "sharpened") for s in ("smollm2-135m", "smollm2-135m.T0.3") for i, v in enumerate([0.5, 1.0, 2.0])]
    write_shard(pa.Table.from_pylist(rows, schema=SCORE_SCHEMA), tmp_path / "scores" / "x", "x")
    html_path, json_path = write_report(tmp_path, tmp_path / "report", base="base", resamples=100)
    data = json.loads(json_path.read_text())
    assert len(data["ppl"]["summary"]) == 4 and data["ppl"]["summary"][0]["median"] == pytest.approx(np.exp(1.0))
    assert 'id="fig-ppl"' in html_path.read_text() and (tmp_path / "report" / "ppl.png").is_file()
