"""Case studies in the report (report/cases.py, report/case_page.py): which problems, which samples,
their numbers from the run, escaped texts in a real browser; and reading only the chosen rows."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from passkcore.analysis import Source
from passkcore.cli import main
from passkcore.images import data_uri
from passkcore.numbers.coverage import Coverage
from passkcore.pipeline.run import SCORE_SCHEMA, write_shard
from passkcore.pipeline.store import SampleStore
from passkcore.problems import arithmetic
from passkcore.report import build_data, write_report
from passkcore.report import cases as cases_module
from passkcore.report.cases import case_studies, choose_problems, pick_samples
from tests.conftest import make_image
from tests.report.test_report import CHROMIUM, FLAGS

# Hostile model-written text: each would run a script, or break out of its element, if not escaped.
HOSTILE = [
    "<script>document.title='pwned';document.documentElement.setAttribute('data-pwned','script')</script>",
    "<img src=x onerror=\"document.documentElement.setAttribute('data-pwned','onerror')\">",
    "</textarea></pre></details></article><script>document.documentElement.setAttribute('data-pwned','break')"
    "</script>",
    "<svg onload=\"document.documentElement.setAttribute('data-pwned','svg')\"></svg> & \"quotes' \\boxed{1}",
]
# Per model and problem: each of N = 6 samples' verdict. p0: only rl; p1: only base; p2: both (rl more
# often); p3: neither; p4: both, base 1 of 6 (base's hardest).
N = 6
VERDICTS = {"base": [[0] * 6, [1, 0, 0, 1, 0, 0], [1, 1, 0, 0, 0, 0], [0] * 6, [0, 0, 0, 0, 1, 0]],
            "rl": [[0, 1, 0, 0, 0, 0], [0] * 6, [1, 1, 1, 1, 1, 0], [0] * 6, [1, 1, 1, 1, 1, 1]]}


def _ppl(model: str, p: int, i: int) -> float:
    return 1.0 + 0.5 * p + 0.1 * i + (0.0 if model == "base" else 3.0)


def hostile_run(root: Path, *, labels: tuple[str, ...] = ("base", "rl"), image: bool = True,
                register: bool = True) -> SampleStore:
    """Five arithmetic problems (p0 with an image), six samples per model, hostile responses, verdicts
    as in VERDICTS (rl-step labels reuse rl's), every sample scored under the base's scorer (and one
    other scorer) with known PPLs; token ids of length 2 + i."""
    problems = arithmetic(5, seed=3)
    if image:
        problems[0] = replace(problems[0], images=[data_uri(make_image((200, 40, 40)))])
    store = SampleStore.open_run(root, problems, {"spec": "arith", "limit": 5, "seed": 3})
    samples, verdicts, scores = [], [], []
    for label in labels:
        if register:  # the manifest says which scorer is the base's: smollm2-135m at T = 1
            store.register_model(label, {"model": "smollm2-135m", "n": N,
                                         "temperature": 1.0 if label == "base" else 0.6})
        pattern = VERDICTS["base" if label == "base" else "rl"]
        for p, prob in enumerate(problems):
            for i in range(N):
                ok = bool(pattern[p][i])
                key = {"model": label, "problem_id": prob.id, "sample_index": i}
                text = f"{label} answer {i} to {prob.id}: {HOSTILE[(p + i) % len(HOSTILE)]}"
                samples.append({**key, "seed": 1, "prompt_token_ids": [1], "response_token_ids": list(range(2 + i)),
                                "response": text, "finish_reason": "stop", "cumulative_logprob": -1.0})
                verdicts.append({**key, "correct": ok, "extracted_answer": "1" if ok else "<b>2</b>", "verifier": "t",
                                 "reason": "passed" if ok else "wrong_answer <script>x</script>"})
                for scorer, shift in (("smollm2-135m", 0.0), ("other.T0.3", 10.0)):
                    scores.append({**key, "scorer": scorer, "num_tokens": 2 + i, "sum_logprob": -1.0,
                                   "mean_logprob": -1.0, "ppl": _ppl(label, p, i) + shift, "mean_entropy": 1.0,
                                   "status": "too_long" if (p, i) == (2, 5) else "ok"})
    store.write_samples(samples)
    store.write_verdicts(verdicts)
    for scorer in ("smollm2-135m", "other.T0.3"):
        part = [r for r in scores if r["scorer"] == scorer]
        write_shard(pa.Table.from_pylist(part, schema=SCORE_SCHEMA), store.folder("scores", scorer), "s0")
    return store


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, SampleStore]:
    root = tmp_path_factory.mktemp("cases")
    store = hostile_run(root / "run")
    html_path, json_path = write_report(store, root / "report", base="base", resamples=50, forecast_resamples=10)
    return html_path, json_path, store


def test_chosen_problems_and_why(hostile_report: tuple[Path, Path, SampleStore]) -> None:
    data = json.loads(hostile_report[1].read_text())
    ids = [p.id for p in hostile_report[2].problems()]
    got = [(c["model"], ids.index(c["problem_id"]), c["why"], c["not_solved_by"]) for c in data["case_studies"]]
    # Coverage-difference cells at k = n first (base's: p1; rl's: p0), then each model's hardest solved
    # problems not shown yet: base p4 (1/6) then p2 (2/6); rl p2 (5/6) then p4 (6/6).
    assert got == [("base", 1, "only_solved", ["rl"]), ("rl", 0, "only_solved", ["base"]),
                   ("base", 4, "hardest_solved", []), ("base", 2, "hardest_solved", []),
                   ("rl", 2, "hardest_solved", []), ("rl", 4, "hardest_solved", [])]
    for case in data["case_studies"]:
        p = ids.index(case["problem_id"])
        pattern = VERDICTS[case["model"]][p]
        assert (case["n"], case["c"]) == (N, sum(pattern)) and case["benchmark"] == "run"
        assert case["counts"] == [{"model": m, "n": N, "c": sum(VERDICTS[m][p])} for m in ("base", "rl")]
        assert set(case) >= {"benchmark", "model", "problem_id", "why", "n", "c", "samples"}
        assert case["reference"] == hostile_report[2].problems()[p].answer and "How many" in case["problem"]


def test_samples_are_the_runs_rows(hostile_report: tuple[Path, Path, SampleStore]) -> None:
    data = json.loads(hostile_report[1].read_text())
    ids = [p.id for p in hostile_report[2].problems()]
    assert data["case_study_rules"] == {"samples": 3, "hardest": 3, "seed": 0}
    for case in data["case_studies"]:
        p, m = ids.index(case["problem_id"]), case["model"]
        pattern = VERDICTS[m][p]
        right = [s for s in case["samples"] if s["correct"]]
        wrong = [s for s in case["samples"] if not s["correct"]]
        assert len(right) == min(3, sum(pattern)) and len(wrong) == (1 if sum(pattern) < N else 0)
        assert [s["sample_index"] for s in right] == sorted(s["sample_index"] for s in right)
        assert case["samples"][-len(wrong) or len(case["samples"]):] == wrong  # the contrast comes last
        for s in case["samples"]:
            i = s["sample_index"]
            assert set(s) >= {"sample_index", "response", "correct", "reason", "num_tokens", "ppl_base", "label"}
            assert s["correct"] == bool(pattern[i]) and s["label"] is None
            assert s["response"] == f"{m} answer {i} to {case['problem_id']}: {HOSTILE[(p + i) % len(HOSTILE)]}"
            assert s["num_tokens"] == 2 + i
            assert s["reason"] == ("passed" if pattern[i] else "wrong_answer <script>x</script>")
            # PPL under the base's scorer (the base model at T = 1), not under the other scorer; null when
            # the sample was not scored ok.
            assert s["ppl_base"] == (None if (p, i) == (2, 5) else pytest.approx(_ppl(m, p, i)))


def test_seeded_choice_of_samples() -> None:
    verdicts = [(i, i % 3 != 0) for i in range(30)]  # 20 correct, 10 incorrect
    a = pick_samples(verdicts, 3, 0, "rl", "p7")
    assert a == pick_samples(verdicts, 3, 0, "rl", "p7")  # the same run and seed: the same samples
    assert len(a) == 4 and all(i % 3 for i in a[:3]) and a[3] % 3 == 0 and a[:3] == sorted(a[:3])
    draws = {tuple(pick_samples(verdicts, 3, s, "rl", "p7")) for s in range(20)}
    assert len(draws) > 10  # the seed changes the choice
    assert pick_samples([(0, True), (1, True)], 5, 0, "m", "p") == [0, 1]  # fewer than M: all, no contrast
    assert pick_samples([(0, False), (4, False)], 3, 0, "m", "p") in ([0], [4])


def test_labels_come_in_through_one_mapping(tmp_path: Path) -> None:
    store = hostile_run(tmp_path / "run", image=False)
    cov = Coverage.from_counts(Source.open(store).counts())
    first = case_studies("b", store, cov, "base", N, samples=2)
    s = first[0]["samples"][0]
    labelled = case_studies("b", store, cov, "base", N, samples=2,
                            labels={(first[0]["model"], first[0]["problem_id"], s["sample_index"]): "guess"})
    assert labelled[0]["samples"][0]["label"] == "guess"
    assert [x["label"] for c in labelled for x in c["samples"]].count("guess") == 1
    assert case_studies("b", store, cov, "base", N, samples=0) == []
    assert cases_module.sample_labels(store) == {}


def test_only_the_chosen_rows_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every read of the case studies is a filtered scan, and what it returns is the chosen problems' rows."""
    store = hostile_run(tmp_path / "run", image=False)
    cov = Coverage.from_counts(Source.open(store).counts())
    chosen = {c["problem_id"] for c in choose_problems(cov, "base", N, hardest=1)}
    reads: list[tuple[Any, int, set[str]]] = []
    real = cases_module.read_shards

    def spy(files: Any, schema: Any, columns: Any = None, filter: Any = None) -> pa.Table:
        table = real(files, schema, columns, filter=filter)
        pids = set(table.column("problem_id").to_pylist()) if "problem_id" in table.column_names else set()
        reads.append((filter, table.num_rows, pids))
        return table

    monkeypatch.setattr(cases_module, "read_shards", spy)
    monkeypatch.setattr(SampleStore, "samples", lambda *a, **k: pytest.fail("the whole run was read"))
    cases = case_studies("b", store, cov, "base", N, samples=1, hardest=1)
    assert {c["problem_id"] for c in cases} == chosen and len(chosen) < 5
    assert reads and all(f is not None for f, _, _ in reads)
    assert all(pids <= chosen for _, _, pids in reads)
    assert sum(rows for _, rows, _ in reads) < 2 * 5 * N * 3  # far fewer than the run's rows read three times


def test_count_files_say_they_need_a_run(tmp_path: Path) -> None:
    counts = tmp_path / "counts.csv"
    counts.write_text("problem_id,model,n,c\np1,base,4,1\np2,base,4,0\np1,rl,4,3\np2,rl,4,2\n")
    html_path, json_path = write_report(counts, tmp_path / "r", resamples=20, forecast_resamples=5)
    data = json.loads(json_path.read_text())
    assert data["case_studies"] == []
    assert data["case_studies_absent"] == [{"benchmark": "counts", "reason": cases_module.NEEDS_RUN}]
    assert 'class="cases-absent"' in html_path.read_text() and "give its run directory" in html_path.read_text()


def test_case_samples_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = hostile_run(tmp_path / "run", image=False)
    out = tmp_path / "r"
    assert main(["report", str(store.root), "--out", str(out), "--bootstrap", "20", "--forecast-resamples", "5",
                 "--case-samples", "1"]) == 0
    data = json.loads((out / "report.json").read_text())
    assert data["case_study_rules"]["samples"] == 1
    assert all(sum(s["correct"] for s in c["samples"]) == 1 for c in data["case_studies"])
    assert main(["report", str(store.root), "--out", str(out), "--case-samples", "-1"]) == 2
    assert "case_samples must be a non-negative integer (--case-samples M), got -1" in capsys.readouterr().err
    assert main(["report", str(store.root), "--out", str(out), "--bootstrap", "20", "--forecast-resamples", "5",
                 "--case-samples", "0"]) == 0
    assert json.loads((out / "report.json").read_text())["case_studies"] == []
    with pytest.raises(ValueError, match="case_samples must be a non-negative integer"):
        build_data(store, case_samples=True)


def test_every_model_text_is_escaped_in_the_markup(hostile_report: tuple[Path, Path, SampleStore]) -> None:
    page = hostile_report[0].read_text()
    section = page[page.index('<section id="case-studies">'):]
    assert "<script>" not in section and "onerror=" not in section.replace("onerror=&quot;", "")
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;" in section
    assert "&lt;/textarea&gt;&lt;/pre&gt;&lt;/details&gt;" in section and "&lt;b&gt;2&lt;/b&gt;" in section
    assert section.count('<article class="case"') == 6


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.attrs: dict[str, dict[str, Any]] = {}
        self.title = ""
        self.scripts = 0
        self.images: list[dict[str, Any]] = []
        self.pre: list[str] = []
        self._in: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, Any]]) -> None:
        self.attrs.setdefault(tag, dict(attrs))
        self._in.append(tag)
        self.scripts += tag == "script"
        if tag == "img":
            self.images.append(dict(attrs))
        if tag == "pre":
            self.pre.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._in:
            del self._in[len(self._in) - 1 - self._in[::-1].index(tag):]

    def handle_data(self, data: str) -> None:
        if self._in and self._in[-1] == "title":
            self.title += data
        if "pre" in self._in:
            self.pre[-1] += data


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make install adds it)")
def test_no_script_of_a_sample_runs_in_chromium(hostile_report: tuple[Path, Path, SampleStore], tmp_path: Path) -> None:
    html_path, json_path, _ = hostile_report
    data = json.loads(json_path.read_text())
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom_text = subprocess.run([CHROMIUM, *FLAGS, *profile, "--dump-dom", html_path.as_uri()],
                              capture_output=True, text=True, timeout=120, check=True).stdout
    dom = _Dom()
    dom.feed(dom_text)
    # The page's own script ran (scripts do run here), and none of the samples' did.
    assert "data-images-rendered" in dom.attrs["body"]
    assert dom.title == "passkcore report" and "data-pwned" not in dom.attrs["html"]
    assert dom.scripts == 1  # the page's one script element; no sample made another
    assert not [i for i in dom.images if "onerror" in i or i.get("src") == "x"]
    # Every sample text is in the DOM as text, character for character.
    shown = set(dom.pre)
    for case in data["case_studies"]:
        for s in case["samples"]:
            assert s["response"] in shown
    # The problem image was decoded and laid out beside its case (and every figure).
    problem_images = [i for i in dom.images if i.get("class") == "problem-image"]
    assert len(problem_images) == 1 and int(problem_images[0]["data-rendered-width"]) == 64
    assert dom.attrs["body"]["data-images-rendered"] == str(len(dom.images))


def test_ppl_by_verdict_and_the_headline(hostile_report: tuple[Path, Path, SampleStore]) -> None:
    data = json.loads(hostile_report[1].read_text())
    ppl = data["benchmarks"][0]["ppl"]
    assert ppl["base_scorer"] == "smollm2-135m"
    rows = {(r["model"], r["scorer"], r["verdict"]): r for r in ppl["by_verdict"]}
    assert len(rows) == len(ppl["by_verdict"]) == 2 * 2 * 3
    summary = {(s["model"], s["scorer"]): s for s in ppl["summary"]}
    for m in ("base", "rl"):
        for scorer, shift in (("smollm2-135m", 0.0), ("other.T0.3", 10.0)):
            values = {"correct": [], "incorrect": [], "all": []}
            for p in range(5):
                for i in range(N):
                    if (p, i) == (2, 5):
                        continue  # scored too_long: not counted
                    v = _ppl(m, p, i) + shift
                    values["correct" if VERDICTS[m][p][i] else "incorrect"].append(v)
                    values["all"].append(v)
            for verdict, vals in values.items():
                r = rows[(m, scorer, verdict)]
                assert r["scored"] == len(vals)
                q = np.quantile(vals, [0.05, 0.25, 0.5, 0.75, 0.95])
                assert [r[k] for k in ("p5", "q1", "median", "q3", "p95")] == pytest.approx(q.tolist(), rel=1e-12)
            # One rule: the "all" row is the summary's.
            assert [rows[(m, scorer, "all")][k] for k in ("q1", "median", "q3")] == \
                [summary[(m, scorer)][k] for k in ("q1", "median", "q3")]
    head = ppl["headline"]
    assert head["scorer"] == "smollm2-135m" and [r["model"] for r in head["rows"]] == ["base", "rl"]
    assert head["rows"][1]["correct"]["median"] == rows[("rl", "smollm2-135m", "correct")]["median"]
    (finding,) = [f for f in data["findings"] if f["kind"] == "ppl_correct"]
    assert finding["text"].startswith("PPL_base(R_correct): under smollm2-135m, rl's correct answers have median")
    page = hostile_report[0].read_text()
    assert 'id="fig-ppl_verdict"' in page and 'id="ppl-correct"' in page
    assert 'data-key="benchmarks.0.ppl.by_verdict.0.median"' in page


def test_series_ppl_against_the_step(tmp_path: Path) -> None:
    store = hostile_run(tmp_path / "run", labels=("base", "rl-step100", "rl-step200"), image=False)
    html_path, json_path = write_report(store, tmp_path / "r", base="base", resamples=30, forecast_resamples=5)
    data = json.loads(json_path.read_text())
    (series,) = data["series"]
    sp = series["ppl_base"]
    assert series["labels"] == ["rl-step100", "rl-step200"] and sp["scorer"] == "smollm2-135m"
    by = {(r["model"], r["verdict"]): r for r in data["benchmarks"][0]["ppl"]["by_verdict"]
          if r["scorer"] == "smollm2-135m"}
    for v in ("correct", "all"):
        for stat in ("scored", "q1", "median", "q3"):
            assert sp[v][stat] == [by[(m, v)][stat] for m in series["labels"]]
        assert sp["base"][v]["median"] == by[("base", v)]["median"]
    correct = [_ppl("rl", p, i) for p in range(5) for i in range(N) if VERDICTS["rl"][p][i] and (p, i) != (2, 5)]
    assert sp["correct"]["median"][0] == pytest.approx(float(np.median(correct)))
    assert (tmp_path / "r" / "series_ppl.png").stat().st_size > 5_000
    page = html_path.read_text()
    assert 'id="fig-series_ppl"' in page and 'data-key="series.0.ppl_base.correct.median.1"' in page
    assert any(f["kind"] == "series_ppl" for f in data["findings"])


def test_no_headline_when_no_scorer_is_known_to_be_the_base(tmp_path: Path) -> None:
    store = hostile_run(tmp_path / "run", image=False, register=False)
    html_path, json_path = write_report(store, tmp_path / "r", base="base", resamples=20, forecast_resamples=5)
    data = json.loads(json_path.read_text())
    ppl = data["benchmarks"][0]["ppl"]
    assert ppl["base_scorer"] is None and ppl["headline"] is None and len(ppl["by_verdict"]) == 12
    assert all(c["ppl_scorer"] is None and all(s["ppl_base"] is None for s in c["samples"])
               for c in data["case_studies"])
    assert not [f for f in data["findings"] if f["kind"] == "ppl_correct"]
    page = html_path.read_text()
    assert 'class="ppl-no-base"' in page and 'id="fig-ppl_verdict"' not in page
