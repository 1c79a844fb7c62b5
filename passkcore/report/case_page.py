"""The case studies on the page: each chosen problem with its text, images, reference, every model's
(n, c) and its samples, every text escaped.

Model-written text is hostile content: every response, extracted answer and verdict reason (and the
problem text and reference, which come from files) goes through ``markup.esc`` and sits in a ``<pre>``
as text, so ``<script>``, ``onerror=`` or ``</textarea>`` in a sample render as characters and no script
of a sample runs (``tests/report/test_cases.py`` checks it in chromium). Long texts are collapsed
(``<details>``); problem images are inlined as data URIs read from the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from passkcore.images import data_uri, locator_bytes
from passkcore.report.markup import esc, num

# A text longer than this (characters or lines) is collapsed under a summary of its first line.
LONG_CHARS, LONG_LINES = 600, 12
RULES = {"only_solved": "a coverage-difference cell at k = n",
         "hardest_solved": "among the hardest problems it solves (lowest c / n > 0)"}
STYLE = (".case{border:1px solid #ddd;border-radius:4px;padding:.4em 1em;margin:1em 0}"
         ".case pre{white-space:pre-wrap;word-break:break-word;background:#f8f8f8;padding:.4em;margin:.3em 0;"
         "font-size:.85em;max-height:40em;overflow:auto}.sample{border-left:4px solid #888;padding-left:.6em;"
         "margin:.6em 0}.sample.correct{border-color:#4a7}.sample.incorrect{border-color:#c55}"
         ".case img{max-width:24em;border:1px solid #ccc}.case table{font-size:.85em}")


def text_block(text: Any, cls: str = "text") -> str:
    """Escaped text in a <pre>; collapsed under its first line when long."""
    if text is None:
        return '<p class="missing">(not stored)</p>'
    text = str(text)
    body = f'<pre class="{cls}">{esc(text)}</pre>'
    lines = text.count("\n") + 1
    if len(text) <= LONG_CHARS and lines <= LONG_LINES:
        return body
    first = text.strip().split("\n", 1)[0][:80]
    return (f"<details><summary>{esc(first)} &hellip; ({len(text)} characters, {lines} lines)</summary>"
            f"{body}</details>")


def _images(case: dict[str, Any], root: str) -> str:
    out = []
    for k, name in enumerate(case["images"]):
        where = f"problem {case['problem_id']!r} image {k}"
        try:
            src = data_uri(locator_bytes(name, where, Path(root)))
        except (ValueError, OSError):
            out.append(f'<p class="missing">image missing: {esc(name)}</p>')
            continue
        out.append(f'<img class="problem-image" alt="{esc(where)}" src="{esc(src)}">')
    return "".join(out)


def _sample(p: str, s: dict[str, Any]) -> str:
    verdict = {True: "correct", False: "incorrect"}.get(s["correct"], "unverified")
    facts = [f"sample {num(p + 'sample_index', s['sample_index'])}", f"<b>{verdict}</b>",
             f"reason: {esc(s['reason'] or '-')}", f"extracted answer: <code>{esc(s.get('extracted_answer') or '-')}</code>",
             f"{num(p + 'num_tokens', s['num_tokens'])} tokens",
             f"PPL under the base: {num(p + 'ppl_base', s['ppl_base'], '{:.3f}')}"]
    if s["label"] is not None:
        facts.append(f'audit label: <b class="label">{esc(s["label"])}</b>')
    return f'<div class="sample {verdict}"><p>{"; ".join(facts)}</p>{text_block(s["response"], "response")}</div>'


def case_html(i: int, case: dict[str, Any], root: str) -> str:
    p = f"case_studies.{i}."
    if case["why"] == "only_solved":
        why = f"solved by {esc(case['model'])}, not by {esc(', '.join(case['not_solved_by']))}"
    else:
        why = f"one of the hardest problems {esc(case['model'])} solves"
    counts = "".join(f"<tr><td>{esc(v['model'])}</td><td>{num(f'{p}counts.{j}.n', v['n'])}</td>"
                     f"<td>{num(f'{p}counts.{j}.c', v['c'])}</td></tr>" for j, v in enumerate(case["counts"]))
    out = [f'<article class="case" id="case-{i}"><h4>problem {esc(case["problem_id"])}: {why}</h4>',
           f"<p>Rule <code>{esc(case['why'])}</code>: {esc(RULES.get(case['why'], case['why']))}. "
           f"{esc(case['model'])}: c = {num(p + 'c', case['c'])} of n = {num(p + 'n', case['n'])}.</p>",
           f"<table><tr><th>model</th><th>n</th><th>c</th></tr>{counts}</table>",
           "<p>Problem:</p>", text_block(case["problem"], "problem"), _images(case, root),
           "<p>Reference:</p>", text_block(case["reference"], "reference")]
    if not case["samples"]:
        out.append("<p>No samples stored for this problem.</p>")
    out += [_sample(f"{p}samples.{j}.", s) for j, s in enumerate(case["samples"])]
    return "".join(out) + "</article>"


def cases_html(data: dict[str, Any]) -> str:
    """The section: per benchmark its cases, or why it has none (a count file has no texts)."""
    rules = data.get("case_study_rules") or {}
    out = [f"<style>{STYLE}</style>", '<section id="case-studies"><h2>Case studies</h2>',
           "<p>The problems that decide each comparison: every coverage-difference cell at k = n against the base "
           f"and, per model, the {rules.get('hardest', '')} hardest problems it solves (lowest c / n &gt; 0). Each shows "
           f"up to {rules.get('samples', '')} correct samples of that model (a seeded choice, seed "
           f"{rules.get('seed', '')}) and one incorrect sample for contrast. PPL under the base: the base model at "
           "its sampling temperature, where the run was scored.</p>"]
    absent = {a["benchmark"]: a["reason"] for a in data.get("case_studies_absent") or []}
    sources = {b["name"]: b["source"] for b in data["benchmarks"]}
    for bench in data["benchmarks"]:
        name = bench["name"]
        out.append(f"<h3>{esc(name)}</h3>")
        if name in absent:
            out.append(f'<p class="cases-absent">{esc(absent[name])}</p>')
            continue
        cases = [(i, c) for i, c in enumerate(data.get("case_studies") or []) if c["benchmark"] == name]
        if not cases:
            out.append("<p>No problem decides the comparison: no coverage difference and nothing solved.</p>")
        out += [case_html(i, c, sources[name]) for i, c in cases]
    return "".join(out) + "</section>"
