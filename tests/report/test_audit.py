"""The report's ``audit`` block: labels counted per benchmark and model, the guess rate with its Wilson
interval, the share of the hardest problems' correct samples audited, the audited pass@k curve beside
the raw one, the judges' agreement, and each case-study sample's label."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import pytest

from passkcore.audit import Label, audit_queue, store_labels
from passkcore.numbers.estimate import pass_at_k_curve
from passkcore.report import write_report
from tests.audit.conftest import CORRECT, N, audit_run


def _report(root: Path) -> tuple[dict, str]:
    html_path, json_path = write_report(root / "run", root / "report", resamples=20, forecast_resamples=5)
    return json.loads(json_path.read_text()), html_path.read_text()


def test_no_labels_no_audit_block(tmp_path: Path) -> None:
    audit_run(tmp_path / "run")
    data, html = _report(tmp_path)
    assert data["audit"] is None and 'id="audit"' not in html


def test_audit_block(tmp_path: Path) -> None:
    store = audit_run(tmp_path / "run")
    queue = audit_queue(store, hardest=20, per_problem=8)
    a = [q for q in queue if q.model == "a"]
    b = [q for q in queue if q.model == "b"]
    # a: 1 guess, 2 valid, 1 unsure; b: 2 valid. ann labels a first; bob relabels one of a's later.
    store_labels(store, [Label(*a[0].key, "valid"), Label(*a[1].key, "valid"), Label(*a[2].key, "guess"),
                         Label(*a[3].key, "unsure"), Label(*b[0].key, "valid")], "ann")
    store_labels(store, [Label(*a[1].key, "guess", "wrong steps"), Label(*b[1].key, "valid")], "bob")
    store_labels(store, [Label(*a[0].key, "valid"), Label(*a[1].key, "valid"), Label(*a[2].key, "guess"),
                         Label(*b[0].key, "guess")], "judge:fake")
    data, html = _report(tmp_path)
    rows = {r["model"]: r for r in data["audit"]["rows"]}
    assert set(rows) == {"a", "b"} and data["audit"]["rules"]["interval"] == "Wilson score interval, 95%"
    ra, rb = rows["a"], rows["b"]
    assert (ra["audited"], ra["valid"], ra["guess"], ra["unsure"]) == (4, 1, 2, 1)
    assert ra["guess_rate"] == pytest.approx(2 / 3)
    # Wilson 95% for 2 of 3 (the mirror of 1 of 3: [0.0615, 0.7923] in published tables).
    assert ra["guess_rate_ci"] == pytest.approx([1 - 0.79234, 1 - 0.06149], abs=1e-4)
    assert (rb["audited"], rb["valid"], rb["guess"], rb["guess_rate"]) == (2, 2, 0, 0.0)
    assert rb["guess_rate_ci"] == pytest.approx([0.0, 0.65762], abs=1e-4)
    # Hardest 20 of 3 solved problems: every correct sample (a: 1 + 3 + 8, b: 2 + 5 + 4).
    assert (ra["hardest_correct"], ra["hardest_audited"]) == (12, 4) and ra["hardest_share"] == pytest.approx(4 / 12)
    assert (rb["hardest_correct"], rb["hardest_audited"]) == (11, 2)
    assert rb["curve"] is None  # no guess, no audited curve
    ks = ra["curve"]["k"]
    assert ks == list(range(1, N + 1))
    assert ra["curve"]["raw"] == pytest.approx(data["curves"]["a"]["pass_at_k"], rel=1e-12)
    ids = [p.id for p in store.problems()]
    c = {pid: CORRECT["a"][i] for i, pid in enumerate(ids)}
    for q in (a[1], a[2]):  # the latest person's label: bob's guess for a[1], ann's guess for a[2]
        c[q.problem_id] -= 1
    expect = pass_at_k_curve([N] * 4, [c[p] for p in ids], ks).values
    assert ra["curve"]["audited"] == pytest.approx(expect.tolist(), rel=1e-12)
    # The judge against the latest person's labels on a: (valid, valid), (guess, valid), (guess, guess).
    # p_o = 2/3; p_e = (1/3)(2/3) + (2/3)(1/3) = 4/9; kappa = (2/3 - 4/9) / (5/9) = 2/5. On b: (valid, guess).
    assert ra["judges"] == [{"auditor": "judge:fake", "labelled": 3, "both": 3, "agree": 2, "kappa": pytest.approx(0.4)}]
    assert rb["judges"] == [{"auditor": "judge:fake", "labelled": 1, "both": 1, "agree": 0, "kappa": pytest.approx(0.0)}]
    # Case studies show the latest person's label of each of their samples.
    people = {a[0].key: "valid", a[1].key: "guess", a[2].key: "guess", a[3].key: "unsure", b[0].key: "valid",
              b[1].key: "valid"}
    shown = [(case["model"], case["problem_id"], s["sample_index"], s["label"]) for case in data["case_studies"]
             for s in case["samples"]]
    assert shown and all(label == people.get((m, p, i)) for m, p, i, label in shown)
    # The page: the section, and every number of it bound to its report.json path.
    assert 'id="audit"' in html and 'id="fig-audit_pass_at_k"' in html
    bound = re.findall(r'data-key="(audit\.[^"]+)" data-value="([^"]*)"', html)
    assert len(bound) > 20
    for key, value in bound:
        node = data
        for part in key.split("."):
            node = node[int(part)] if isinstance(node, list) else node[part]
        assert json.loads(unescape(value)) == node, key
    assert (tmp_path / "report" / "audit_pass_at_k.png").is_file()
