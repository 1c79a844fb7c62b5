"""The self-contained HTML page: figures inlined as data URIs, every number bound to its report.json
path (``data-key``) so the browser test can compare each one with the JSON."""

from __future__ import annotations

import html
import json
from typing import Any

from passkcore.report.audit import audit_html
from passkcore.report.case_page import cases_html
from passkcore.report.markup import img, num
from passkcore.report.perplexity import series_ppl_html, verdict_html

_ = html.escape
__all__ = ["img", "num", "render_html"]


def _interval(key_low: str, low: Any, key_high: str, high: Any, fmt: str = "{:.4f}") -> str:
    return f"[{num(key_low, low, fmt)}, {num(key_high, high, fmt)}]"


def sampling_html(data: dict[str, Any]) -> str:
    """How each run's models were sampled (engine dtype, temperature), a line per benchmark run;
    nothing for count files."""
    lines = []
    for i, bench in enumerate(data["benchmarks"]):
        parts = []
        for j, row in enumerate(bench.get("sampling") or []):
            p = f"benchmarks.{i}.sampling.{j}."
            dtype = num(p + "dtype", row["dtype"]) if row["dtype"] else "dtype not recorded"
            temperature = "" if row["temperature"] is None else f", temperature {num(p + 'temperature', row['temperature'], '{:g}')}"
            parts.append(f"<b>{_(row['label'])}</b> {dtype}{temperature}")
        if parts:
            lines.append(f"<li>{_(bench['name'])}: " + "; ".join(parts) + "</li>")
    return '<p>Sampling engines:</p><ul id="sampling">' + "".join(lines) + "</ul>" if lines else ""


def findings_html(data: dict[str, Any]) -> str:
    """One item per benchmark and model against the base; every number bound to its JSON path."""
    out = ['<section id="findings"><h2>Findings</h2><ul>']
    group = None
    for s in data["findings"]:
        if (s["benchmark"], s["model"]) != group:
            out.append(("</li>" if group else "") + "<li>")
            group = (s["benchmark"], s["model"])
        for part in s["parts"]:
            if isinstance(part, str):
                out.append(_(part))
            else:
                out.append(f'<span data-key="{_(part["key"])}" data-value="{_(json.dumps(part["value"]))}">'
                           f'{_(part["text"])}</span>')
        out.append(" ")
    if not data["findings"]:
        out.append("<li>A single model: nothing to compare.")
    return "".join(out) + "</li></ul></section>"


def summary_html(data: dict[str, Any]) -> str:
    """A row per benchmark and model against the base (three decimals: it has to fit 1200 px)."""
    f3 = "{:.3f}"
    out = ['<h2>Summary</h2><div class="wide"><table id="summary"><tr><th>benchmark</th><th>base / model</th>'
           "<th>pass@1<br>base / model</th><th>k_max</th><th>pass@k_max<br>base / model</th>"
           "<th>crossing k<br>[interval]</th><th>solved<br>base / model</th><th>coverage difference<br>[interval]</th>"
           "<th>gap<br>[interval]</th></tr>"]
    for i, bench in enumerate(data["benchmarks"]):
        for j, r in enumerate(bench["summary"]):
            p = f"benchmarks.{i}.summary.{j}."
            pair = [(num(p + f"pass_at_{t}_base", r[f"pass_at_{t}_base"], f3),
                     num(p + f"pass_at_{t}_model", r[f"pass_at_{t}_model"], f3)) for t in ("1", "k_max")]
            cells = [_(r["benchmark"]), f"{_(r['base'])} / {_(r['model'])}", " / ".join(pair[0]),
                     num(p + "k_max", r["k_max"]), " / ".join(pair[1]),
                     num(p + "crossing_k", r["crossing_k"]) + " "
                     + _interval(p + "crossing_ci_low", r["crossing_ci_low"], p + "crossing_ci_high", r["crossing_ci_high"]),
                     f"{num(p + 'solved_base', r['solved_base'])} / {num(p + 'solved_model', r['solved_model'])}",
                     num(p + "coverage_difference", r["coverage_difference"]) + " "
                     + _interval(p + "coverage_difference_ci.0", r["coverage_difference_ci"][0],
                                 p + "coverage_difference_ci.1", r["coverage_difference_ci"][1]),
                     num(p + "gap", r["gap"], f3) + " "
                     + _interval(p + "gap_ci_low", r["gap_ci_low"], p + "gap_ci_high", r["gap_ci_high"], f3)]
            out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return "".join(out) + "</table></div>"


def _curves_table(i: int, bench: dict[str, Any]) -> str:
    names = bench["models"]
    out = ['<div class="wide"><table><tr><th>k</th>'
           + "".join(f"<th>{_(m)} ({bench['problems'][m]} problems)</th>" for m in names) + "</tr>"]
    for k in bench["k_table"]:
        j = k - 1
        cells = []
        for m in names:
            c, p = bench["curves"][m], f"benchmarks.{i}.curves.{m}."
            cells.append("<td>" + num(f"{p}pass_at_k.{j}", c["pass_at_k"][j]) + " "
                         + _interval(f"{p}ci_low.{j}", c["ci_low"][j], f"{p}ci_high.{j}", c["ci_high"][j]) + "</td>")
        out.append(f"<tr><td>{k}</td>{''.join(cells)}</tr>")
    return "".join(out) + "</table></div>"


def _crossings(i: int, bench: dict[str, Any]) -> str:
    out = ["<ul>"]
    for j, c in enumerate(bench["crossings"]):
        p = f"benchmarks.{i}.crossings.{j}."
        frac = num(p + "fraction_of_resamples", c["fraction_of_resamples"], "{:.1%}")
        if c["k"] is None:
            out.append(f"<li>{_(c['a'])} stays below {_(c['b'])} for every k up to n (crosses in {frac} of resamples)</li>")
        else:
            out.append(f"<li>{_(c['a'])} (lower at k = 1) reaches {_(c['b'])} at k = {num(p + 'k', c['k'])}; interval "
                       f"{num(p + 'ci_low', c['ci_low'])} to {num(p + 'ci_high', c['ci_high'])}; crosses in {frac} "
                       "of resamples</li>")
    return "".join(out) + "</ul>"


def _coverage(i: int, bench: dict[str, Any], data: dict[str, Any]) -> str:
    cov = bench["coverage"]
    if not cov:
        return ""
    out = [f"<h4>Coverage at k = {cov['k']} (solved: any correct sample)</h4><table><tr><th>a</th><th>b</th>"
           "<th>both</th><th>only a</th><th>only b</th><th>neither</th></tr>"]
    for j, pair in enumerate(cov["pairs"]):
        cells = "".join(f"<td>{num(f'benchmarks.{i}.coverage.pairs.{j}.{f}', pair[f])}</td>"
                        for f in ("both", "only_a", "only_b", "neither"))
        out.append(f"<tr><td>{_(pair['a'])}</td><td>{_(pair['b'])}</td>{cells}</tr>")
    out.append("</table>")
    for ids in data["coverage_ids"]:
        if ids["benchmark"] != bench["name"]:
            continue
        out.append(f'<details class="ids"><summary>problem ids: {_(ids["a"])} vs {_(ids["b"])}</summary><dl>')
        for cell, label in (("only_a", f"only {ids['a']}"), ("only_b", f"only {ids['b']}"), ("neither", "neither"),
                            ("both", "both")):
            out.append(f"<dt>{_(label)} ({len(ids[cell])})</dt><dd>{_(', '.join(ids[cell])) or '-'}</dd>")
        out.append("</dl></details>")
    return "".join(out)


def _gaps(i: int, bench: dict[str, Any]) -> str:
    if not bench["gaps"]:
        return ""
    out = ["<h4>Sampling-efficiency gap</h4><table><tr><th>trained</th><th>base</th><th>k_max</th>"
           "<th>pass@1(trained) - pass@k_max(base)</th></tr>"]
    for j, g in enumerate(bench["gaps"]):
        p = f"benchmarks.{i}.gaps.{j}."
        out.append(f"<tr><td>{_(g['trained'])}</td><td>{_(g['base'])}</td><td>{num(p + 'k_max', g['k_max'])}</td>"
                   f"<td>{num(p + 'gap', g['gap'])} {_interval(p + 'ci_low', g['ci_low'], p + 'ci_high', g['ci_high'])}"
                   "</td></tr>")
    return "".join(out) + "</table>"


def _metric_rows(i: int, bench: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    """(model, metric, a cell per k) for every per-k metric of the panel's ``metrics`` block."""
    met, f3, rows = bench["metrics"], "{:.3f}", []
    for m, b in met["models"].items():
        p = f"benchmarks.{i}.metrics.models.{m}."
        if "maj_at_k" in b:
            rows.append((m, "maj@k", [num(f"{p}maj_at_k.{j}", v, f3) for j, v in enumerate(b["maj_at_k"])]))
        for t_i, tau in enumerate(met["g_taus"]):
            rows.append((m, f"G-pass@k, tau = {tau}",
                         [num(f"{p}g_pass_at_k.{t_i}.{j}", v, f3) for j, v in enumerate(b["g_pass_at_k"][t_i])]))
        rows.append((m, "mG-pass@k", [num(f"{p}mg_pass_at_k.{j}", v, f3) for j, v in enumerate(b["mg_pass_at_k"])]))
        bay = b["bayes"]
        rows.append((m, "Bayes@N [interval]", [num(f"{p}bayes.mean.{j}", v, f3) + " " + _interval(
            f"{p}bayes.low.{j}", bay["low"][j], f"{p}bayes.high.{j}", bay["high"][j], f3) for j, v in enumerate(bay["mean"])]))
    return rows


def _forecast_cell(p: str, f: dict[str, Any], j: int) -> str:
    return (num(f"{p}forecast.value.{j}", f["value"][j], "{:.3f}") + " "
            + _interval(f"{p}forecast.low.{j}", f["low"][j], f"{p}forecast.high.{j}", f["high"][j], "{:.3f}"))


def _metrics(i: int, bench: dict[str, Any]) -> str:
    """The estimators of ``passk estimate --metric`` at the panel's ks, the cover@tau ends and the forecast."""
    met = bench["metrics"]
    out = [f"<h4>More estimators (mean over problems; {met['ci']:.0%} intervals)</h4>"]
    if met["maj_at_k_absent"]:
        out.append(f'<p class="maj-absent">maj@k absent: {_(met["maj_at_k_absent"])}</p>')
    out.append('<div class="wide"><table><tr><th>model</th><th>metric</th>'
               + "".join(f"<th>k = {k}</th>" for k in met["k"]) + "</tr>")
    for m, label, cells in _metric_rows(i, bench):
        out.append(f"<tr><td>{_(m)}</td><td>{_(label)}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    out.append("</table></div>")
    taus = met["cover_taus"]
    ends = [taus.index(t) for t in (0.5, 1.0) if t in taus]
    out.append('<div class="wide"><table><tr><th>model</th>'
               + "".join(f"<th>cover@{taus[t]}</th>" for t in ends)
               + "".join(f"<th>forecast pass@{k} [interval]</th>" for k in met["forecast_k"])
               + f"<th>forecast crossing with {_(bench['base'])}: K [interval]</th></tr>")
    for m, b in met["models"].items():
        p = f"benchmarks.{i}.metrics.models.{m}."
        cells = [num(f"{p}cover.value.{t}", b["cover"]["value"][t], "{:.3f}") for t in ends]
        cells += [_forecast_cell(p, b["forecast"], j) for j in range(len(met["forecast_k"]))]
        c = b["forecast_crossing"]
        if c is None:
            cells.append("-")
        else:
            q = p + "forecast_crossing."
            cells.append((num(q + "k", c["k"]) if c["k"] is not None else f"none up to {c['kmax']}") + " "
                         + _interval(q + "low", c["low"], q + "high", c["high"]) + " in "
                         + num(q + "fraction_of_resamples", c["fraction_of_resamples"], "{:.1%}") + " of resamples")
        out.append(f"<tr><td>{_(m)}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    out.append(f"</table></div><p>Forecast: zero-inflated beta-binomial fit, {met['forecast_resamples']} bootstrap "
               "refits over problems; crossing searched over K = 1 to the largest forecast K.</p>")
    return "".join(out)


def series_html(data: dict[str, Any], figs: dict[str, bytes]) -> str:
    if not data["series"]:
        return ""
    out = ["<h2>Checkpoint series</h2>"]
    for s_i, s in enumerate(data["series"]):
        suffix = "" if s_i == 0 else f"_{s_i}"
        out.append(f"<h3>{_(s['benchmark'])}: {_(', '.join(s['labels']))} against {_(s['base'])}</h3>")
        out.append(img(f"series{suffix}", figs[f"series{suffix}"], "pass@k against the step, with intervals"))
        out.append('<div class="wide"><table><tr><th>step</th><th>model</th>'
                   + "".join(f"<th>pass@{k}</th>" for k in s["k"]) + "</tr>")
        for j, (step, label) in enumerate(zip(s["steps"], s["labels"])):
            cells = []
            for v_i, v in enumerate(s["values"]):
                p = f"series.{s_i}.values.{v_i}."
                cells.append(f"<td>{num(p + f'pass_at_k.{j}', v['pass_at_k'][j])} "
                             f"{_interval(p + f'ci_low.{j}', v['ci_low'][j], p + f'ci_high.{j}', v['ci_high'][j])}</td>")
            out.append(f"<tr><td>{_(str(step))}</td><td>{_(label)}</td>{''.join(cells)}</tr>")
        out.append("</table></div>")
        cov = s["coverage"]
        out.append(f"<h4>Coverage of every checkpoint against {_(s['base'])} at k = {cov['k']}</h4>"
                   "<table><tr><th>checkpoint</th><th>both</th><th>only checkpoint</th><th>only base</th>"
                   "<th>neither</th></tr>")
        for j, r in enumerate(cov["rows"]):
            row = "".join(f"<td>{num(f'series.{s_i}.coverage.rows.{j}.{f}', r[f])}</td>"
                          for f in ("both", "only_model", "only_base", "neither"))
            out.append(f"<tr><td>{_(r['model'])}</td>{row}</tr>")
        out.append("</table>")
        out.append(img(f"series_coverage{suffix}", figs[f"series_coverage{suffix}"],
                       "problems solved by the row model and not by the column model"))
        out.append(series_ppl_html(s_i, s, figs))
    return "".join(out)


def entropy_html(data: dict[str, Any], figs: dict[str, bytes]) -> str:
    ent = data["entropy"]
    if not ent:
        return ""
    out = ["<h2>Entropy</h2>", f"<p>Mean entropy per response token; {_(ent['weighting'])}.</p>",
           img("entropy", figs["entropy"], "entropy of each model's samples under itself and under the base"),
           "<table><tr><th>benchmark</th><th>samples by</th><th>under itself</th><th>entropy</th><th>under base</th>"
           "<th>entropy</th><th>tokens</th></tr>"]
    for j, r in enumerate(ent["rows"]):
        p = f"entropy.rows.{j}."
        own = num(p + "self.mean_entropy", r["self"]["mean_entropy"]) if r["self"] else "not scored"
        base = num(p + "under_base.mean_entropy", r["under_base"]["mean_entropy"]) if r["under_base"] else "not scored"
        tokens = num(p + "self.tokens", r["self"]["tokens"]) if r["self"] else "-"
        out.append(f"<tr><td>{_(r['benchmark'])}</td><td>{_(r['model'])}</td><td>{_(r['self_scorer'] or '-')}</td>"
                   f"<td>{own}</td><td>{_(r['base_scorer'] or '-')}</td><td>{base}</td><td>{tokens}</td></tr>")
    return "".join(out) + "</table>"


def ppl_html(data: dict[str, Any], figs: dict[str, bytes]) -> str:
    scored = [(i, b) for i, b in enumerate(data["benchmarks"]) if b["ppl"]]
    if not scored:
        return ('<h2>Perplexity</h2><p id="ppl-absent">Absent: this report was made from counts alone '
                "(no stored samples were scored).</p>")
    out = ["<h2>Perplexity</h2>", verdict_html(data, figs), "<h3>Every sample under every scorer</h3>",
           img("ppl", figs["ppl"], "perplexity box plots")]
    for i, bench in scored:
        out.append(f"<h4>{_(bench['name'])}</h4><table><tr><th>samples by</th><th>scored under</th><th>scored</th>"
                   "<th>q1</th><th>median</th><th>q3</th></tr>")
        for j, s in enumerate(bench["ppl"]["summary"]):
            p = f"benchmarks.{i}.ppl.summary.{j}."
            out.append(f"<tr><td>{_(s['model'])}</td><td>{_(s['scorer'])}</td><td>{num(p + 'scored', s['scored'])}</td>"
                       + "".join(f"<td>{num(p + q, s[q], '{:.3f}')}</td>" for q in ("q1", "median", "q3")) + "</tr>")
        out.append("</table>")
    return "".join(out)


STYLE = ("body{font-family:sans-serif;max-width:72em;margin:2em auto;padding:0 1em;line-height:1.4}"
         "table{border-collapse:collapse;font-size:.9em;margin:.5em 0}.wide{overflow-x:auto}"
         "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f4f4f4}"
         "img{max-width:100%}#findings ul{background:#f6f8fa;padding:.8em 1em .8em 2em;border-left:4px solid #4a7}"
         "#findings li{margin:.3em 0}#summary td{white-space:nowrap}"
         "details.ids{margin:.3em 0 1em}details.ids dd{font-family:monospace;font-size:.85em;word-break:break-word}")
SCRIPT = ("window.addEventListener('load',function(){var n=0;document.querySelectorAll('img').forEach(function(i){"
          "i.setAttribute('data-rendered-width',i.naturalWidth);if(i.complete&&i.naturalWidth>0)n++;});"
          "document.body.setAttribute('data-images-rendered',n);"
          # Layout widths at the window's size: the browser test checks the page fits 1200 px.
          "document.body.setAttribute('data-scroll-width',document.documentElement.scrollWidth);"
          "var t=document.getElementById('summary');if(t)document.body.setAttribute('data-summary-width',t.offsetWidth);});")


def render_html(data: dict[str, Any], figs: dict[str, bytes]) -> str:
    """One self-contained page: findings, summary, a panel per benchmark, series, entropy, PPL."""
    names = [b["name"] for b in data["benchmarks"]]
    models = list(dict.fromkeys(m for b in data["benchmarks"] for m in b["models"]))
    boot = data["bootstrap"]
    parts = [f"<h1>pass@k study: {_(', '.join(models))}</h1>",
             f"<p>Benchmarks: {_(', '.join(names))} (sources: "
             + ", ".join(f"<code>{_(b['source'])}</code>" for b in data["benchmarks"])
             + f"). Base model: <b>{_(data['base'])}</b>. Bands and intervals answer the "
             + f"<b>{num('interval_target', data['interval_target'], '{}')}</b> target: {boot['ci']:.0%} "
             + f"{_(boot['method'])}, {boot['resamples']} resamples, seed {boot['seed']}.</p>",
             sampling_html(data), findings_html(data), summary_html(data),
             "<h2>pass@k</h2>", img("pass_at_k", figs["pass_at_k"], "pass@k curves with bootstrap bands, per benchmark")]
    for i, bench in enumerate(data["benchmarks"]):
        parts += [f'<section class="benchmark"><h3>{_(bench["name"])}</h3>', _curves_table(i, bench),
                  "<h4>Where the curves cross</h4>", _crossings(i, bench), _coverage(i, bench, data), _gaps(i, bench),
                  _metrics(i, bench), "</section>"]
    parts.append("<h2>Accuracy histogram</h2>" + img("accuracy", figs["accuracy"], "accuracy histograms"))
    parts.append("<h2>cover@tau</h2><p>Share of problems with at least a share tau of their samples correct.</p>"
                 + img("cover", figs["cover"], "cover@tau curves per model, per benchmark"))
    parts += [series_html(data, figs), entropy_html(data, figs), ppl_html(data, figs)]
    parts.append(cases_html(data))
    parts.append(audit_html(data, figs))
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>passkcore report</title><style>{STYLE}</style>"
            f"<script>{SCRIPT}</script></head><body>{''.join(parts)}</body></html>")
