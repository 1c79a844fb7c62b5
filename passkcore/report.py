"""The study's report: figures (matplotlib), one self-contained HTML page and a JSON of every number.

Works on a run directory (curves, coverage, histograms, gap, and perplexities when scores exist) or on
a count file alone (the PPL section is then marked absent).
"""

from __future__ import annotations

import base64
import html
import io
import json
from itertools import combinations
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from passkcore._atomic import write_text_atomically
from passkcore.counts import load_counts
from passkcore.coverage import Coverage, coverage_summary
from passkcore.estimate import powers_of_two
from passkcore.stats import PairedBootstrap, accuracy_histogram

SCHEMA = "passkcore.report/1"


def _ppl_section(source: Path) -> Optional[dict[str, Any]]:
    from passkcore.runs import ppl_summary, run_scores
    from passkcore.store import is_run_dir

    if not is_run_dir(source):
        return None
    scores = run_scores(source)
    if scores.num_rows == 0:
        return None
    values: dict[str, list[float]] = {}
    for r in scores.select(["model", "scorer", "ppl", "status"]).to_pylist():
        if r["status"] == "ok":
            values.setdefault(f"{r['model']}|{r['scorer']}", []).append(float(r["ppl"]))
    return {"summary": ppl_summary(scores), "values": values}


def build_data(source: Union[str, Path], *, base: Optional[str] = None, resamples: int = 2000, seed: int = 0,
               ci: float = 0.95, k_max_gap: int = 256) -> dict[str, Any]:
    """Every number the report shows."""
    source = Path(source)
    models = load_counts(source)
    names = list(models)
    if base is not None and base not in models:
        raise ValueError(f"--base {base!r} is not among the models {names}")
    base = base or names[0]
    cov = Coverage.from_counts(models)
    counts = {m: cov.counts(m) for m in names}
    n_min = min(int(n.min()) for n, _ in counts.values())
    ks = list(range(1, n_min + 1))
    boot = PairedBootstrap(counts, resamples=resamples, seed=seed)
    boot.prepare(names, ks)
    curves = {}
    for m in names:
        band = boot.band(m, ks, ci)
        curves[m] = {"pass_at_k": band.estimate.tolist(), "ci_low": band.low.tolist(), "ci_high": band.high.tolist()}
    data: dict[str, Any] = {
        "schema": SCHEMA,
        "source": str(source),
        "base": base,
        "models": names,
        "problems": {m: int(counts[m][0].size) for m in names},
        "bootstrap": {"ci": ci, "resamples": resamples, "seed": seed},
        "k": ks,
        "k_table": powers_of_two(n_min),
        "curves": curves,
        "crossings": [boot.crossing(a, b, ci).as_dict() for a, b in combinations(names, 2)],
        "coverage": coverage_summary(cov, n_min) if len(names) >= 2 else None,
        "histograms": {},
        "gaps": [],
        "ppl": _ppl_section(source),
    }
    for m in names:
        h = accuracy_histogram(*counts[m])
        data["histograms"][m] = {"labels": h.labels, "counts": h.counts.tolist()}
    for m in names:
        if m != base:
            g = boot.efficiency_gap(m, base, k_max=k_max_gap, ci=ci)
            data["gaps"].append({"trained": m, "base": base, "k_max": g.k_max, "gap": g.estimate,
                                 "ci_low": g.low, "ci_high": g.high})
    return data


# -- figures -------------------------------------------------------------------------------------------
def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def figures(data: dict[str, Any]) -> dict[str, bytes]:
    """PNG bytes per figure name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, bytes] = {}
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ks = np.array(data["k"])
    for i, m in enumerate(data["models"]):
        c = data["curves"][m]
        ax.plot(ks, c["pass_at_k"], color=colors[i % len(colors)], label=m, lw=2)
        ax.fill_between(ks, c["ci_low"], c["ci_high"], color=colors[i % len(colors)], alpha=0.2, lw=0)
    for cross in data["crossings"]:
        if cross["k"] is not None:
            y = data["curves"][cross["a"]]["pass_at_k"][cross["k"] - 1]
            ax.axvline(cross["k"], color="grey", ls="--", lw=1)
            ax.annotate(f"{cross['a']} reaches {cross['b']}\nat k = {cross['k']}", (cross["k"], y),
                        textcoords="offset points", xytext=(8, -28), fontsize=9)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k (samples per problem)")
    ax.set_ylabel("pass@k (mean over problems)")
    ax.set_title(f"pass@k with {data['bootstrap']['ci']:.0%} paired bootstrap bands")
    ax.grid(alpha=0.3)
    ax.legend()
    out["pass_at_k"] = _png(fig)

    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    labels = data["histograms"][data["models"][0]]["labels"]
    width = 0.8 / len(data["models"])
    for i, m in enumerate(data["models"]):
        counts = np.array(data["histograms"][m]["counts"])
        ax.bar(np.arange(len(labels)) + i * width, counts / counts.sum(), width, label=m, color=colors[i % len(colors)])
    ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2, labels, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("share of problems")
    ax.set_xlabel("accuracy c / n")
    ax.set_title("accuracy histogram")
    ax.legend()
    out["accuracy"] = _png(fig)

    if data["ppl"]:
        fig, ax = plt.subplots(figsize=(7.5, 4))
        keys = sorted(data["ppl"]["values"])
        ax.boxplot([data["ppl"]["values"][k] for k in keys], showfliers=False)
        ax.set_xticks(range(1, len(keys) + 1), [k.replace("|", "\nunder ") for k in keys], fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("perplexity of the response")
        ax.set_title("PPL of each policy's samples under each scorer")
        out["ppl"] = _png(fig)
    return out


# -- HTML ----------------------------------------------------------------------------------------------
def _num(key: str, value: Any, fmt: str = "{:.4f}") -> str:
    """A number bound to its JSON path: the browser test compares data-value with report.json."""
    if value is None:
        return f'<span data-key="{html.escape(key)}" data-value="null">-</span>'
    text = fmt.format(value) if isinstance(value, float) else str(value)
    return f'<span data-key="{html.escape(key)}" data-value="{html.escape(json.dumps(value))}">{text}</span>'


def _img(name: str, png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<figure><img id="fig-{name}" alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></figure>'


def render_html(data: dict[str, Any], figs: dict[str, bytes]) -> str:
    names = data["models"]
    parts = [f"<h1>pass@k study: {html.escape(', '.join(names))}</h1>",
             f"<p>Source: <code>{html.escape(data['source'])}</code>. Base model for the gap: <b>{html.escape(data['base'])}</b>. "
             f"Bands: {data['bootstrap']['ci']:.0%} paired bootstrap over problems, {data['bootstrap']['resamples']} resamples, "
             f"seed {data['bootstrap']['seed']}.</p>",
             "<h2>pass@k</h2>", _img("pass_at_k", figs["pass_at_k"], "pass@k curves with bootstrap bands"),
             "<table><tr><th>k</th>" + "".join(f"<th>{html.escape(m)} ({data['problems'][m]} problems)</th>" for m in names) + "</tr>"]
    for k in data["k_table"]:
        cells = []
        for m in names:
            j = k - 1
            cells.append("<td>" + _num(f"curves.{m}.pass_at_k.{j}", data["curves"][m]["pass_at_k"][j]) + " ["
                         + _num(f"curves.{m}.ci_low.{j}", data["curves"][m]["ci_low"][j]) + ", "
                         + _num(f"curves.{m}.ci_high.{j}", data["curves"][m]["ci_high"][j]) + "]</td>")
        parts.append(f"<tr><td>{k}</td>{''.join(cells)}</tr>")
    parts.append("</table><h3>Where the curves cross</h3><ul>")
    for i, c in enumerate(data["crossings"]):
        if c["k"] is None:
            parts.append(f"<li>{html.escape(c['a'])} stays below {html.escape(c['b'])} for every k up to n "
                         f"(crosses in {_num(f'crossings.{i}.fraction_of_resamples', c['fraction_of_resamples'], '{:.1%}')} of resamples)</li>")
        else:
            parts.append(f"<li>{html.escape(c['a'])} (lower at k = 1) reaches {html.escape(c['b'])} at k = "
                         f"{_num(f'crossings.{i}.k', c['k'])}; interval {_num(f'crossings.{i}.ci_low', c['ci_low'])} to "
                         f"{_num(f'crossings.{i}.ci_high', c['ci_high'])}; crosses in "
                         f"{_num(f'crossings.{i}.fraction_of_resamples', c['fraction_of_resamples'], '{:.1%}')} of resamples</li>")
    parts.append("</ul>")
    if data["coverage"]:
        cov = data["coverage"]
        parts.append(f"<h2>Coverage at k = {cov['k']} (solved: any correct sample)</h2><table><tr><th>a</th><th>b</th>"
                     "<th>both</th><th>only a</th><th>only b</th><th>neither</th></tr>")
        for i, pair in enumerate(cov["pairs"]):
            counts = "".join(f"<td>{_num(f'coverage.pairs.{i}.{f}', pair[f])}</td>" for f in ("both", "only_a", "only_b", "neither"))
            parts.append(f"<tr><td>{html.escape(pair['a'])}</td><td>{html.escape(pair['b'])}</td>{counts}</tr>")
        parts.append("</table>")
    parts.append("<h2>Sampling-efficiency gap</h2><table><tr><th>trained</th><th>base</th><th>k_max</th>"
                 "<th>pass@1(trained) - pass@k_max(base)</th></tr>")
    for i, g in enumerate(data["gaps"]):
        parts.append(f"<tr><td>{html.escape(g['trained'])}</td><td>{html.escape(g['base'])}</td><td>{_num(f'gaps.{i}.k_max', g['k_max'])}</td>"
                     f"<td>{_num(f'gaps.{i}.gap', g['gap'])} [{_num(f'gaps.{i}.ci_low', g['ci_low'])}, "
                     f"{_num(f'gaps.{i}.ci_high', g['ci_high'])}]</td></tr>")
    parts.append("</table><h2>Accuracy histogram</h2>" + _img("accuracy", figs["accuracy"], "accuracy histograms"))
    parts.append("<h2>Perplexity</h2>")
    if data["ppl"]:
        parts.append(_img("ppl", figs["ppl"], "perplexity box plots"))
        parts.append("<table><tr><th>samples by</th><th>scored under</th><th>scored</th><th>q1</th><th>median</th><th>q3</th></tr>")
        for i, s in enumerate(data["ppl"]["summary"]):
            parts.append(f"<tr><td>{html.escape(s['model'])}</td><td>{html.escape(s['scorer'])}</td>"
                         f"<td>{_num(f'ppl.summary.{i}.scored', s['scored'])}</td>"
                         + "".join(f"<td>{_num(f'ppl.summary.{i}.{q}', s[q], '{:.3f}')}</td>" for q in ("q1", "median", "q3"))
                         + "</tr>")
        parts.append("</table>")
    else:
        parts.append('<p id="ppl-absent">Absent: this report was made from counts alone (no stored samples were scored).</p>')
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}img{max-width:100%}")
    script = ("window.addEventListener('load',function(){var n=0;document.querySelectorAll('img').forEach(function(i){"
              "i.setAttribute('data-rendered-width',i.naturalWidth);if(i.complete&&i.naturalWidth>0)n++;});"
              "document.body.setAttribute('data-images-rendered',n);});")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>passkcore report</title><style>{style}</style>"
            f"<script>{script}</script></head><body>{''.join(parts)}</body></html>")


def write_report(source: Union[str, Path], out: Union[str, Path], **kwargs: Any) -> tuple[Path, Path]:
    """Writes ``out/report.html`` (self-contained), ``out/report.json`` and the figures as PNG files."""
    data = build_data(source, **kwargs)
    figs = figures(data)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, png in figs.items():
        (out / f"{name}.png").write_bytes(png)
    json_path, html_path = out / "report.json", out / "report.html"
    write_text_atomically(json_path, json.dumps(data, indent=1))
    write_text_atomically(html_path, render_html(data, figs))
    return html_path, json_path
