"""The guesswork audit in the report: report.json's ``audit`` block, its figure and its section.

A row per benchmark and model of every run that holds labels (``passkcore.audit``): how many of the
model's samples people labelled (each sample's latest person's label; judges apart), how many as
``guess``, the guess rate (guess / (valid + guess)) with its 95% Wilson score interval, the share of the
correct samples of its hardest solved problems that carry a label, the pass@k curve with guesses
counted as incorrect beside the raw one where any guess was found, and each judge's agreement with
people (Cohen's kappa, and on how many samples both labelled).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pyarrow as pa

from passkcore.analysis import Source
from passkcore.audit.numbers import INTERVAL, agreement, audited_counts, wilson_interval
from passkcore.audit.queue import DEFAULT_HARDEST, hardest_correct
from passkcore.audit.store import auditors, is_judge, label_counts, latest_labels, read_audits
from passkcore.numbers.counts import split_models, validate
from passkcore.numbers.estimate import pass_at_k_curve
from passkcore.report.markup import esc, img, num

RULES = {"labels": "each sample's latest label given by a person (auditors not named judge:...)",
         "guess_rate": "guess / (valid + guess); unsure labels decide nothing and are counted apart",
         "interval": INTERVAL, "hardest": DEFAULT_HARDEST,
         "audited_curve": "pass@k with every correct sample labelled guess counted as incorrect",
         "agreement": "Cohen's kappa of a judge's labels against people's, on the samples both labelled"}


def audit_rows(bench: str, source: Source, ks: list[int], audits: Optional[pa.Table] = None) -> list[dict[str, Any]]:
    """The ``audit`` rows of one benchmark; none for a count file or a run without labels. ``audits``:
    the run's audits table when the caller has read it."""
    if source.run is None:
        return []
    audits = read_audits(source.run) if audits is None else audits
    if audits.num_rows == 0:
        return []
    people = latest_labels(audits)
    judges = {a: latest_labels(audits, a) for a in auditors(audits) if is_judge(a)}
    counts = source.run.counts()
    raw = split_models(validate(counts, source=str(source.path)))
    audited = split_models(validate(audited_counts(source.run, audits=audits, counts=counts), source=str(source.path)))
    rows = []
    for model in raw:
        mine = {k: r for k, r in people.items() if k[0] == model}
        counted = label_counts(mine)
        decided = counted["valid"] + counted["guess"]
        total, keys = hardest_correct(source.run, model)
        in_hardest = sum((k[1], k[2]) in keys for k in mine)
        row: dict[str, Any] = {
            "benchmark": bench, "model": model, "audited": len(mine), **counted,
            "guess_rate": counted["guess"] / decided if decided else None,
            "guess_rate_ci": wilson_interval(counted["guess"], decided),
            "hardest_correct": total, "hardest_audited": in_hardest,
            "hardest_share": in_hardest / total if total else None, "curve": None,
            "judges": [{"auditor": a, "labelled": sum(k[0] == model for k in labels),
                        **agreement({k: r for k, r in labels.items() if k[0] == model}, mine)}
                       for a, labels in judges.items()],
        }
        if counted["guess"]:
            usable = [k for k in ks if k <= int(raw[model].n.min())]
            row["curve"] = {"k": usable, "raw": pass_at_k_curve(raw[model].n, raw[model].c, usable).values.tolist(),
                            "audited": pass_at_k_curve(audited[model].n, audited[model].c, usable).values.tolist()}
        rows.append(row)
    return rows


def audit_block(rows: list[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """report.json's ``audit``: the rules and the rows; None when no run holds labels."""
    return {"rules": RULES, "rows": rows} if rows else None


def audit_figure(data: dict[str, Any]) -> dict[str, bytes]:
    """``audit_pass_at_k``: raw and audited pass@k of every row with a guess; none without."""
    block = data.get("audit")
    curves = [r for r in (block["rows"] if block else []) if r["curve"]]
    if not curves:
        return {}
    import io

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.2), layout="constrained")
    colors = list(plt.rcParams["axes.prop_cycle"].by_key()["color"])
    for i, r in enumerate(curves):
        color, name = colors[i % len(colors)], f"{r['benchmark']}: {r['model']}"
        ks = np.array(r["curve"]["k"])
        ax.plot(ks, r["curve"]["raw"], color=color, lw=2, label=f"{name} raw")
        ax.plot(ks, r["curve"]["audited"], color=color, lw=2, ls="--", label=f"{name} audited")
        if ks.size > 1:
            ax.set_xscale("log", base=2)
    ax.set_xlabel("k (samples per problem)")
    ax.set_ylabel("pass@k (mean over problems)")
    ax.set_title("pass@k raw and audited (guesses counted as incorrect)")
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return {"audit_pass_at_k": buf.getvalue()}


def audit_html(data: dict[str, Any], figs: dict[str, bytes]) -> str:
    """The audit section: a row per benchmark and model, the judges' agreement, the audited curves."""
    block = data.get("audit")
    if not block:
        return ""
    f3 = "{:.3f}"
    out = ['<section id="audit"><h2>Guesswork audit</h2>',
           f"<p>Labels: {esc(RULES['labels'])}. Guess rate: {esc(RULES['guess_rate'])}; interval: "
           f"{esc(INTERVAL)}. Share audited: of the correct samples of each model's {DEFAULT_HARDEST} hardest "
           "solved problems (lowest c/n).</p>",
           "<table><tr><th>benchmark</th><th>model</th><th>audited</th><th>valid / guess / unsure</th>"
           "<th>guess rate [95% interval]</th><th>hardest problems' correct samples audited</th>"
           "<th>judge agreement (Cohen's kappa, samples both labelled)</th></tr>"]
    for j, r in enumerate(block["rows"]):
        p = f"audit.rows.{j}."
        ci = r["guess_rate_ci"] or [None, None]
        judges = "; ".join(f"{esc(g['auditor'])}: kappa {num(p + f'judges.{q}.kappa', g['kappa'], f3)} over "
                           f"{num(p + f'judges.{q}.both', g['both'])}" for q, g in enumerate(r["judges"])) or "-"
        cells = [esc(r["benchmark"]), esc(r["model"]), num(p + "audited", r["audited"]),
                 " / ".join(num(p + lab, r[lab]) for lab in ("valid", "guess", "unsure")),
                 f"{num(p + 'guess_rate', r['guess_rate'], f3)} [{num(p + 'guess_rate_ci.0', ci[0], f3)}, "
                 f"{num(p + 'guess_rate_ci.1', ci[1], f3)}]",
                 f"{num(p + 'hardest_audited', r['hardest_audited'])} of {num(p + 'hardest_correct', r['hardest_correct'])}"
                 f" ({num(p + 'hardest_share', r['hardest_share'], '{:.1%}')})", judges]
        out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    out.append("</table>")
    for j, r in enumerate(block["rows"]):
        if r["curve"]:
            out.append(_curve_table(j, r))
    if "audit_pass_at_k" in figs:
        out.append(img("audit_pass_at_k", figs["audit_pass_at_k"], "pass@k raw and audited"))
    return "".join(out) + "</section>"


def _curve_table(j: int, r: dict[str, Any]) -> str:
    """Raw and audited pass@k at powers of two (and the largest k)."""
    ks = r["curve"]["k"]
    shown = [i for i, k in enumerate(ks) if k & (k - 1) == 0 or i == len(ks) - 1]
    p = f"audit.rows.{j}.curve."
    head = "".join(f"<th>{ks[i]}</th>" for i in shown)
    raw = "".join(f"<td>{num(p + f'raw.{i}', r['curve']['raw'][i])}</td>" for i in shown)
    aud = "".join(f"<td>{num(p + f'audited.{i}', r['curve']['audited'][i])}</td>" for i in shown)
    return (f"<h4>{esc(r['benchmark'])}: {esc(r['model'])}, pass@k raw and audited</h4><table><tr><th>k</th>{head}</tr>"
            f"<tr><th>raw</th>{raw}</tr><tr><th>audited</th>{aud}</tr></table>")
