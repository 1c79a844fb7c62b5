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

from passkcore import maj_at_k
from passkcore.analysis import Source, load_counts
from passkcore.cli import main
from passkcore.numbers.forecast import forecast_crossing
from passkcore.pipeline.store import SampleStore
from passkcore.problems import arithmetic
from passkcore.report import build_data, figures, lookup, render_html, write_report
from passkcore.report.metrics import COVER_TAUS, G_TAUS
from tests.conftest import PUBLISHED, ROOT, fake_run

SYNTHETIC = ROOT / "data" / "synthetic_rl_series.csv"

FORECAST_RESAMPLES = 20  # the report's default is 200: about 50 s per model pair on MATH500
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=5000"]


def test_report_on_an_open_run_opens_it_no_more(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from passkcore.pipeline.store import SampleStore

    root = _scored_run(tmp_path / "run")
    by_path = build_data(root, base="base", resamples=50, forecast_resamples=10)
    store = SampleStore(root)
    opened: list[Any] = []
    real_init = SampleStore.__init__

    def counting_init(self: SampleStore, where: Any) -> None:
        opened.append(where)
        real_init(self, where)

    monkeypatch.setattr(SampleStore, "__init__", counting_init)
    by_store = build_data(store, base="base", resamples=50, forecast_resamples=10)
    assert opened == []  # counts, PPL, entropy, maj@k: all from the store handed in
    assert by_store == by_path and by_store["ppl"]["values"]["base|smollm2-135m"] == pytest.approx(
        [np.e, 2 * np.e, 3 * np.e])
    build_data(root, base="base", resamples=50, forecast_resamples=10)
    assert opened == [root]  # a path: opened once for the whole report


def test_ppl_values_per_group_in_stored_order(tmp_path: Path) -> None:
    import pyarrow as pa

    from passkcore.pipeline.run import SCORE_SCHEMA, write_shard
    from passkcore.report.build import ppl_section

    store = fake_run(tmp_path / "run", {"base": 1, "sharpened": 3})
    rng = np.random.default_rng(1)
    rows: list[tuple[int, dict[str, Any]]] = []
    for shard in range(3):  # groups of unequal sizes, interleaved across shards and two scorer folders
        for i in range(int(rng.integers(1, 6))):
            for m, s in (("base", "a"), ("sharpened", "a"), ("base", "b.T0.3"))[: 1 + (i + shard) % 3]:
                rows.append((shard, {"model": m, "scorer": s, "problem_id": "p", "sample_index": len(rows),
                                     "num_tokens": 3, "sum_logprob": -1.0, "mean_logprob": -1.0,
                                     "ppl": float(rng.random() * 10 + 1), "mean_entropy": 1.0,
                                     "status": "ok" if rng.random() > 0.2 else "too_long"}))
        rows.append((shard, {**rows[-1][1], "model": "sharpened", "scorer": "b.T0.3", "sample_index": len(rows),
                             "status": "too_long"}))  # a group with no row scored ok
    for shard in range(3):
        for folder in ("a", "b.T0.3"):
            part = [r for sh, r in rows if sh == shard and r["scorer"] == folder]
            if part:
                write_shard(pa.Table.from_pylist(part, schema=SCORE_SCHEMA), store.folder("scores", folder), f"s{shard}")
    expected: dict[str, list[float]] = {}
    for r in store.scores().to_pylist():  # the per-row loop the report used to run
        if r["status"] == "ok":
            expected.setdefault(f"{r['model']}|{r['scorer']}", []).append(float(r["ppl"]))
    got = ppl_section(Source.open(store))
    assert got is not None and got["values"] == expected and "sharpened|b.T0.3" not in got["values"]
    assert ppl_section(Source.open(store.root)) == got  # a run given by its path: the same
    summary = {(s["model"], s["scorer"]): s for s in got["summary"]}
    for key, values in expected.items():  # one rule for the quartiles and the values behind them
        row = summary[tuple(key.split("|"))]
        assert row["scored"] == len(values) and row["median"] == pytest.approx(float(np.median(values)))
    assert summary[("sharpened", "b.T0.3")]["scored"] == 0 and summary[("sharpened", "b.T0.3")]["median"] is None


@pytest.fixture(scope="module")
def math500_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from tests.conftest import MATH500

    return write_report(MATH500, tmp_path_factory.mktemp("report"), resamples=1000, forecast_resamples=20)


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
        self.texts: dict[str, list[str]] = {}  # a number can show in several places (findings, tables)
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
            self.texts.setdefault(a["data-key"], []).append("")
            self._open.append(a["data-key"])

    def handle_data(self, data: str) -> None:
        if self._open:
            self.texts[self._open[-1]][-1] += data

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
    assert len(page.images) == 3 and page.body.get("data-images-rendered") == "3"
    assert all(int(img["data-rendered-width"]) > 500 for img in page.images)
    # Every number in the page is the number in report.json.
    assert len(page.values) > 40
    for key, value in page.values.items():
        expected = _lookup(data, key)
        assert json.loads(value) == expected, key
        for text in page.texts[key]:
            # + 1e-12: a value on a rounding boundary (0.4525 shown as 0.453) is half a unit off plus float error.
            if isinstance(expected, float) and "%" not in text:
                assert float(text) == pytest.approx(expected, abs=0.5 * 10 ** -_decimals(text) + 1e-12), key
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *FLAGS, *profile, "--window-size=1200,1600", f"--screenshot={shot}", html_path.as_uri()],
                   capture_output=True, timeout=120, check=True)
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)
    assert pixels.shape[:2] == (1600, 1200)
    assert float(np.std(pixels[..., :3])) > 0.05  # not blank: text, tables and the curve figure


def test_report_cli_and_bad_base(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import MATH500

    assert main(["report", str(MATH500), "--out", str(tmp_path), "--bootstrap", "200",
                 "--forecast-resamples", "10"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "report.html") in out and str(tmp_path / "report.json") in out
    assert main(["report", str(MATH500), "--out", str(tmp_path), "--base", "nope"]) == 2
    assert "--base 'nope' is not among the models" in capsys.readouterr().err
    import os

    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        assert main(["report", str(MATH500), "--bootstrap", "100", "--forecast-resamples", "10"]) == 0
    finally:
        os.chdir(cwd)
    assert (tmp_path / "report" / "report.json").is_file()


def test_report_with_perplexities(tmp_path: Path) -> None:
    from passkcore.pipeline.commands import verify
    from passkcore.pipeline.run import write_shard
    from passkcore.scoring import SCORE_SCHEMA

    fake_run(tmp_path, {"base": 1, "sharpened": 3})
    verify(tmp_path)
    import pyarrow as pa

    rows = [{"model": m, "scorer": s, "problem_id": "p", "sample_index": i, "num_tokens": 3, "sum_logprob": -3.0 * v,
             "mean_logprob": -v, "ppl": float(np.exp(v)), "mean_entropy": 1.0, "status": "ok"}
            for m in ("base", "sharpened") for s in ("smollm2-135m", "smollm2-135m.T0.3") for i, v in enumerate([0.5, 1.0, 2.0])]
    write_shard(pa.Table.from_pylist(rows, schema=SCORE_SCHEMA), tmp_path / "scores" / "x", "x")
    html_path, json_path = write_report(tmp_path, tmp_path / "report", base="base", resamples=100, forecast_resamples=10)
    data = json.loads(json_path.read_text())
    assert len(data["ppl"]["summary"]) == 4 and data["ppl"]["summary"][0]["median"] == pytest.approx(np.exp(1.0))
    assert 'id="fig-ppl"' in html_path.read_text() and (tmp_path / "report" / "ppl.png").is_file()


def _scored_run(root: Path) -> Path:
    """A fake run: base sampled at T = 1, sharpened at T = 0.3, every sample scored under both."""
    from passkcore.pipeline.commands import verify
    from passkcore.pipeline.run import write_shard
    from passkcore.scoring import SCORE_SCHEMA

    store = fake_run(root, {"base": 1, "sharpened": 3})
    for label, t, dtype in (("base", 1.0, {"dtype": "bfloat16"}), ("sharpened", 0.3, {})):  # sharpened: before dtypes
        store.register_model(label, {"model": "smollm2-135m", "n": 4, "temperature": t, "top_p": 1.0, **dtype})
    verify(root)
    import pyarrow as pa

    # Entropy depends on the scorer and the sample; tokens differ so a plain mean would differ from
    # the token-weighted one.
    rows = [{"model": m, "scorer": s, "problem_id": "p", "sample_index": i, "num_tokens": tokens,
             "sum_logprob": -float(tokens), "mean_logprob": -1.0, "ppl": float(np.e) * (1 + i), "mean_entropy": ent * scale,
             "status": "ok"}
            for m, scale in (("base", 1.0), ("sharpened", 0.5))
            for s, ent in (("smollm2-135m", 2.0), ("smollm2-135m.T0.3", 0.8))
            for i, tokens in enumerate([1, 3, 6])]
    rows[0] = {**rows[0], "mean_entropy": 5.0}  # base under itself: 5.0 x 1 token
    write_shard(pa.Table.from_pylist(rows, schema=SCORE_SCHEMA), root / "scores" / "x", "x")
    return root


def test_entropy_is_token_weighted_under_itself_and_the_base(tmp_path: Path) -> None:
    data = build_data(_scored_run(tmp_path / "run"), base="base", resamples=50, forecast_resamples=10)
    rows = {r["model"]: r for r in data["entropy"]["rows"]}
    assert "token-weighted" in data["entropy"]["weighting"]
    base, sharp = rows["base"], rows["sharpened"]
    assert (base["self_scorer"], base["base_scorer"]) == ("smollm2-135m", "smollm2-135m")
    assert (sharp["self_scorer"], sharp["base_scorer"]) == ("smollm2-135m.T0.3", "smollm2-135m")
    assert base["self"]["mean_entropy"] == pytest.approx((5.0 * 1 + 2.0 * 3 + 2.0 * 6) / 10)  # plain mean: 3.0
    assert base["self"]["tokens"] == 10 and base["self"]["samples"] == 3
    assert sharp["self"]["mean_entropy"] == pytest.approx(0.4) and sharp["under_base"]["mean_entropy"] == pytest.approx(1.0)
    kinds = [f["kind"] for f in data["findings"]]
    assert kinds == ["crossing", "coverage", "gap", "ppl", "entropy"]
    assert data["benchmarks"][0]["ppl"]["base_scorer"] == "smollm2-135m"
    # Each label's sampling engine as the manifest keeps it: a dtype that was not recorded is null.
    sampling = {row["label"]: row for row in data["benchmarks"][0]["sampling"]}
    assert (sampling["base"]["dtype"], sampling["base"]["temperature"]) == ("bfloat16", 1.0)
    assert (sampling["sharpened"]["dtype"], sampling["sharpened"]["temperature"]) == (None, 0.3)


def test_report_header_names_each_runs_sampling_dtype(full_report: tuple[Path, Path]) -> None:
    html_path, json_path = full_report
    data = json.loads(json_path.read_text())
    assert [b["sampling"] is None for b in data["benchmarks"]] == [False, True, True]  # count files: no manifest
    page = html_path.read_text()
    header = page[page.index('<ul id="sampling">'):page.index("</ul>", page.index('<ul id="sampling">'))]
    assert 'data-key="benchmarks.0.sampling.0.dtype" data-value="&quot;bfloat16&quot;">bfloat16' in header
    assert "<b>sharpened</b> dtype not recorded" in header and "MATH500" not in header


@pytest.fixture(scope="module")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A scored run, the MATH500 counts and the synthetic checkpoint series in one report."""
    from tests.conftest import MATH500

    root = tmp_path_factory.mktemp("full")
    run = _scored_run(root / "run")
    return write_report([run, MATH500, SYNTHETIC], root / "report", base="base", resamples=300,
                        benchmarks=["toy", "MATH500", "synthetic"], forecast_resamples=FORECAST_RESAMPLES)


def test_several_benchmarks_a_panel_and_a_summary_row_each(full_report: tuple[Path, Path]) -> None:
    html_path, json_path = full_report
    data = json.loads(json_path.read_text())
    assert [b["name"] for b in data["benchmarks"]] == ["toy", "MATH500", "synthetic"]
    assert [[(r["base"], r["model"]) for r in b["summary"]] for b in data["benchmarks"]] == [
        [("base", "sharpened")], [("base", "simplerl")], [("base", f"rl-step{s}") for s in (100, 200, 300)]]
    math = data["benchmarks"][1]
    for model, values in PUBLISHED.items():
        got = [math["curves"][model]["pass_at_k"][k - 1] for k in (1, 2, 4, 8, 16, 32, 64, 128)]
        assert got == pytest.approx(values, rel=1e-15, abs=0)
    row = math["summary"][0]
    assert (row["pass_at_1_model"], row["pass_at_k_max_base"], row["k_max"]) == pytest.approx((0.779328125, 0.962, 128))
    assert (row["solved_base"], row["solved_model"], row["coverage_difference"]) == (481, 465, -16)
    assert row["crossing_lower"] == "base" and 8 < row["crossing_k"] <= 16
    assert row["crossing_ci_low"] <= row["crossing_k"] <= row["crossing_ci_high"]
    assert row["coverage_difference_ci"][0] < -16 < row["coverage_difference_ci"][1] < 0
    assert row["gap"] == pytest.approx(0.779328125 - 0.962) and row["gap_ci_low"] < row["gap"] < row["gap_ci_high"]
    # The top level is still the single-source report of the first benchmark.
    assert data["models"] == ["base", "sharpened"] and data["curves"] == data["benchmarks"][0]["curves"]
    page = html_path.read_text()
    assert page.count('<section class="benchmark">') == 3 and page.count("<tr><td>synthetic</td>") == 3


def test_coverage_ids_behind_every_cell(full_report: tuple[Path, Path]) -> None:
    import pyarrow.csv as pcsv

    from tests.conftest import MATH500

    data = json.loads(full_report[1].read_text())
    (math,) = [c for c in data["coverage_ids"] if c["benchmark"] == "MATH500"]
    table = pcsv.read_csv(MATH500).to_pylist()
    solved = {(str(r["model"]), str(r["problem_id"])): r["c"] > 0 for r in table}
    ids = [str(i) for i in range(500)]
    assert math["only_a"] == [p for p in ids if solved["base", p] and not solved["simplerl", p]]
    assert math["only_b"] == [p for p in ids if solved["simplerl", p] and not solved["base", p]]
    assert [len(math[c]) for c in ("both", "only_a", "only_b", "neither")] == [462, 19, 3, 16]
    assert sorted(sum((math[c] for c in ("both", "only_a", "only_b", "neither")), []), key=int) == ids
    synth = [(c["a"], c["b"]) for c in data["coverage_ids"] if c["benchmark"] == "synthetic"]
    assert len(synth) == 6  # every unordered pair of the four models
    assert 'problem ids: base vs simplerl' in full_report[0].read_text()


def test_series_numbers_equal_passk_estimate(full_report: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(full_report[1].read_text())
    (series,) = data["series"]
    assert series["labels"] == ["rl-step100", "rl-step200", "rl-step300"] and series["steps"] == [100, 200, 300]
    assert series["k"] == [1, 64]
    assert main(["estimate", str(SYNTHETIC), "--k", "1,64", "--json"]) == 0
    estimate = json.loads(capsys.readouterr().out)
    for j, k in enumerate(estimate["k"]):
        row = series["values"][j]
        assert row["k"] == k
        assert row["pass_at_k"] == [estimate["models"][m]["pass_at_k"][j] for m in series["labels"]]  # to the bit
        assert row["base"]["pass_at_k"] == estimate["models"]["base"]["pass_at_k"][j]
        assert all(lo <= v <= hi for lo, v, hi in zip(row["ci_low"], row["pass_at_k"], row["ci_high"]))
    assert series["values"][0]["pass_at_k"] == sorted(series["values"][0]["pass_at_k"])  # pass@1 rises...
    assert series["values"][1]["pass_at_k"] == sorted(series["values"][1]["pass_at_k"], reverse=True)  # ...pass@64 falls
    rows = series["coverage"]["rows"]
    assert [r["only_base"] for r in rows] == series["coverage"]["matrix"]["solved_by_row_not_col"][0][1:]
    assert all(r["both"] + r["only_model"] + r["only_base"] + r["neither"] == 400 for r in rows)


def test_series_order_and_ks_from_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import MATH500

    assert main(["report", str(MATH500), str(SYNTHETIC), "--benchmark", "MATH500", "synthetic", "--out",
                 str(tmp_path), "--bootstrap", "50", "--forecast-resamples", "10"]) == 0
    data = json.loads((tmp_path / "report.json").read_text())
    assert [b["name"] for b in data["benchmarks"]] == ["MATH500", "synthetic"]
    assert [len(b["summary"]) for b in data["benchmarks"]] == [1, 3] and len(data["series"]) == 1
    assert main(["report", str(SYNTHETIC), "--out", str(tmp_path), "--bootstrap", "50", "--forecast-resamples", "10",
                 "--series", "rl-step300,rl-step100", "--series-k", "2", "8"]) == 0
    data = json.loads((tmp_path / "report.json").read_text())
    (series,) = data["series"]
    assert series["labels"] == ["rl-step300", "rl-step100"] and series["k"] == [2, 8]
    assert (tmp_path / "series.png").stat().st_size > 5_000
    assert main(["report", str(SYNTHETIC), "--out", str(tmp_path), "--series", "rl-step100", "nope"]) == 2
    assert "no benchmark has all of these models" in capsys.readouterr().err
    assert main(["report", str(SYNTHETIC), str(SYNTHETIC), "--out", str(tmp_path), "--benchmark", "a"]) == 2
    assert "--benchmark: 1 name(s) for 2 source(s)" in capsys.readouterr().err
    assert main(["report", str(SYNTHETIC), "--out", str(tmp_path), "--series-k", "65"]) == 2
    assert "--series-k 0: k must be an integer in [1, n = 64], got 65" in capsys.readouterr().err
    assert main(["report", str(SYNTHETIC), "--out", str(tmp_path), "--forecast-resamples", "0"]) == 2
    assert "forecast_resamples must be a positive integer, got 0" in capsys.readouterr().err


def _decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def test_findings_are_report_json_numbers(full_report: tuple[Path, Path]) -> None:
    import re

    data = json.loads(full_report[1].read_text())
    kinds = {f["kind"] for f in data["findings"]}
    assert {"crossing", "coverage", "gap", "ppl", "entropy"} <= kinds
    names = sorted({b["name"] for b in data["benchmarks"]} | {m for b in data["benchmarks"] for m in b["models"]}
                   | {"smollm2-135m.T0.3", "smollm2-135m", "pass@1"}, key=len, reverse=True)
    for f in data["findings"]:
        assert "".join(p if isinstance(p, str) else p["text"] for p in f["parts"]) == f["text"]
        rest = "".join(p for p in f["parts"] if isinstance(p, str))
        for part in f["parts"]:
            if isinstance(part, dict):
                assert lookup(data, part["key"]) == part["value"], part
                if isinstance(part["value"], float) and "%" not in part["text"]:
                    assert float(part["text"]) == pytest.approx(part["value"], abs=0.5 * 10 ** -_decimals(part["text"]))
                elif "%" not in part["text"]:
                    assert part["text"] == str(part["value"])
        for name in names:
            rest = rest.replace(name, "")
        assert not re.search(r"\d", rest), (rest, f["text"])  # no number that is not a report.json number


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make install adds it)")
def test_full_report_in_a_real_browser(full_report: tuple[Path, Path], tmp_path: Path) -> None:
    html_path, json_path = full_report
    data = json.loads(json_path.read_text())
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run([CHROMIUM, *FLAGS, *profile, "--window-size=1200,900", "--dump-dom", html_path.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    page = _Numbers()
    page.feed(dom)
    ids = sorted(img["id"] for img in page.images)
    assert ids == sorted(f"fig-{n}" for n in ("pass_at_k", "accuracy", "cover", "ppl", "series", "series_coverage",
                                                    "entropy", "ppl_verdict"))
    assert page.body.get("data-images-rendered") == "8"  # every figure decoded
    assert all(int(img["data-rendered-width"]) > 300 for img in page.images)
    finding_keys = {p["key"] for f in data["findings"] for p in f["parts"] if isinstance(p, dict)}
    assert finding_keys <= set(page.values)
    for key, value in page.values.items():
        expected = _lookup(data, key)
        assert json.loads(value) == expected, key
        for text in page.texts[key]:
            # + 1e-12: a value on a rounding boundary (0.4525 shown as 0.453) is half a unit off plus float error.
            if isinstance(expected, float) and "%" not in text:
                assert float(text) == pytest.approx(expected, abs=0.5 * 10 ** -_decimals(text) + 1e-12), key
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *FLAGS, *profile, "--window-size=1200,900", f"--screenshot={shot}",
                    html_path.as_uri()], capture_output=True, timeout=120, check=True)
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)
    assert pixels.shape[:2] == (900, 1200)
    assert float(np.std(pixels[..., :3])) > 0.05
    # Readable at 1200 px: nothing wider than the window (the summary table included), no sideways scrolling.
    assert int(page.body["data-scroll-width"]) <= 1200 and int(page.body["data-summary-width"]) <= 1150


def _estimate(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["estimate", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_metrics_equal_passk_estimate(full_report: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(full_report[1].read_text())
    for bench in data["benchmarks"]:
        met, src = bench["metrics"], bench["source"]
        n_min = met["k"][-1]
        assert met["forecast_k"] == [2 * n_min, 4 * n_min] and met["forecast_resamples"] == FORECAST_RESAMPLES
        cli = _estimate([src, "--metric", "g-pass@k,bayes", "--tau", ",".join(map(str, G_TAUS)), "--forecast",
                         ",".join(map(str, met["forecast_k"])), "--forecast-resamples", str(FORECAST_RESAMPLES)], capsys)
        cover = _estimate([src, "--metric", "cover", "--tau", ",".join(map(str, COVER_TAUS))], capsys)
        assert cli["k"] == met["k"] == bench["k_table"]
        assert set(met["models"]) == set(bench["models"])
        for name, block in met["models"].items():
            want = cli["models"][name]
            assert block["g_pass_at_k"] == [want["g_pass_at_k"][str(t)] for t in G_TAUS]
            assert block["mg_pass_at_k"] == want["mg_pass_at_k"] and block["bayes"] == want["bayes"]
            assert block["forecast"] == want["forecast"]
            assert block["cover"] == cover["models"][name]["cover"]
            # A percentile interval need not hold the full-data fit (2 problems in the toy run): only low <= high.
            assert all(lo <= hi for lo, hi in zip(block["forecast"]["low"], block["forecast"]["high"]))
            if name == bench["base"]:
                assert block["forecast_crossing"] is None
            else:
                counts = load_counts(src)
                a, b = counts[bench["base"]], counts[name]
                cross = forecast_crossing(a.n, a.c, b.n, b.c, kmax=4 * n_min, resamples=FORECAST_RESAMPLES)
                assert block["forecast_crossing"] == {"base": bench["base"], "kmax": 4 * n_min, **cross._asdict()}
    toy, math500 = data["benchmarks"][0], data["benchmarks"][1]
    maj = _estimate([toy["source"], "--metric", "maj@k"], capsys)
    assert toy["metrics"]["maj_at_k_absent"] is None
    for name, block in toy["metrics"]["models"].items():
        assert block["maj_at_k"] == maj["models"][name]["maj_at_k"]
    assert "count file" in math500["metrics"]["maj_at_k_absent"]
    assert all("maj_at_k" not in b for b in math500["metrics"]["models"].values())
    page = full_report[0].read_text()
    assert 'class="maj-absent"' in page and "benchmarks.0.metrics.models.base.maj_at_k.0" in page


def _keyed_run(root: Path) -> Path:
    """Three problems, 4 samples each, two models; verdicts carry the answer key (majority answers)."""
    problems = arithmetic(3, seed=5)
    store = SampleStore.open_run(root, problems, {"spec": "arith", "limit": 3, "seed": 5})
    # Per model and problem: each sample's (correct, answer key); None abstains.
    answers = {"base": [[(True, "a"), (False, "b"), (False, "b"), (False, None)],
                        [(False, "x"), (False, "y"), (True, "z"), (False, "x")],
                        [(True, "k"), (True, "k"), (False, "j"), (False, "i")]],
               "rl": [[(True, "a"), (True, "a"), (True, "a"), (False, "b")],
                      [(True, "z"), (True, "z"), (False, "x"), (False, None)],
                      [(True, "k"), (False, "j"), (False, "j"), (False, "j")]]}
    rows, verdicts = [], []
    for model, per_problem in answers.items():
        for p, samples in zip(problems, per_problem):
            for i, (ok, key) in enumerate(samples):
                ident = {"model": model, "problem_id": p.id, "sample_index": i}
                rows.append({**ident, "seed": 1, "prompt_token_ids": [1], "response_token_ids": [2],
                             "response": str(key), "finish_reason": "stop", "cumulative_logprob": -1.0})
                verdicts.append({**ident, "correct": ok, "extracted_answer": key, "verifier": "t", "reason": "r",
                                 "answer_key": key})
    store.write_samples(rows)
    store.write_verdicts(verdicts)
    return root


def test_maj_at_k_from_a_keyed_run_and_absent_for_counts(tmp_path: Path) -> None:
    run = _keyed_run(tmp_path / "run")
    data = build_data(run, base="base", resamples=50, forecast_resamples=10)
    met = data["benchmarks"][0]["metrics"]
    assert met["k"] == [1, 2, 4] and met["maj_at_k_absent"] is None
    # base: p1 classes {a: 1, b: 2} + 1 abstain, a correct; p2 {x: 2, y: 1, z: 1}, z correct; p3 {k: 2, j: 1, i: 1}.
    want = maj_at_k([[1, 2], [2, 1, 1], [2, 1, 1]], [0, 2, 0], [1, 2, 4], abstain=[1, 0, 0]).mean(axis=0)
    np.testing.assert_allclose(met["models"]["base"]["maj_at_k"], want, rtol=1e-14)
    assert met["models"]["rl"]["maj_at_k"][-1] > met["models"]["base"]["maj_at_k"][-1]
    counts = tmp_path / "counts.csv"
    counts.write_text("problem_id,model,n,c\np1,base,4,1\np2,base,4,0\np1,rl,4,3\np2,rl,4,2\n")
    met = build_data(counts, resamples=50, forecast_resamples=10)["benchmarks"][0]["metrics"]
    assert "maj@k needs each sample's answer class" in met["maj_at_k_absent"]
    assert all("maj_at_k" not in b for b in met["models"].values())
    assert met["models"]["rl"]["cover"]["value"][met["cover_taus"].index(0.5)] == 1.0


def test_every_interval_names_its_target(tmp_path: Path) -> None:
    from tests.conftest import MATH500

    datas = {t: build_data(MATH500, resamples=300, forecast_resamples=2, interval=t) for t in ("benchmark", "population")}
    for target, data in datas.items():
        assert data["interval_target"] == target == data["bootstrap"]["target"]
        assert all(b["interval_target"] == target for b in data["benchmarks"])
        for f in data["findings"]:
            if f["kind"] in ("crossing", "coverage", "gap") and "interval" in f["text"]:
                assert f"{target} interval" in f["text"], f["text"]
    bench, pop = (datas[t]["benchmarks"][0]["summary"][0] for t in ("benchmark", "population"))
    assert bench["coverage_difference"] == pop["coverage_difference"] == -16
    lo, hi = bench["coverage_difference_ci"]
    assert pop["coverage_difference_ci"][0] < lo < -16 < hi < 0 and hi - lo < pop["coverage_difference_ci"][1] - pop["coverage_difference_ci"][0]
    page = render_html(datas["population"], figures(datas["population"]))
    assert 'answer the <b><span data-key="interval_target" data-value="&quot;population&quot;">population</span></b>' in page
    with pytest.raises(ValueError, match="target must be one of"):
        build_data(MATH500, resamples=10, forecast_resamples=2, interval="both")
