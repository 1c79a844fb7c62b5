"""Perplexity as the study uses it: split by verdict, with ``PPL_base(R_correct)`` as the headline.

The study's perplexity question is about a model's *correct* answers under the base model: how
likely the base finds what RL (or distillation) gets right, and how that changes over training. So
each (model, scorer) group of the PPL section is split by the samples' verdicts: ``correct``,
``incorrect`` and ``all`` (unverified samples count in ``all`` only). The headline is every model's
correct answers under the base scorer (the base model at its sampling temperature), and in a
checkpoint series, the median and quartiles of PPL under the base of each checkpoint's samples
(correct and all) against the step. Quantiles are numpy's default (linear), as ``ppl_summary``'s, so
the ``all`` rows equal the summary's. The rule for which rows count is ``ppl_groups``': scored ``ok``
with a PPL.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from passkcore.pipeline.run import VERDICT_SCHEMA, read_shards
from passkcore.pipeline.store import SampleStore
from passkcore.report.markup import esc, img, num

VERDICTS = ("correct", "incorrect", "all")
_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
_KEY = ["model", "problem_id", "sample_index"]
SCORE_COLUMNS = ["model", "scorer", "problem_id", "sample_index", "ppl", "status"]  # one read for the PPL section


def _with_verdicts(run: SampleStore, scores: Optional[pa.Table]) -> pa.Table:
    """Scores scored ok with a PPL (model, scorer, ppl), each with its sample's ``correct`` (null when
    unverified): an Arrow join of six score columns with the verdicts' key and ``correct`` columns."""
    scores = (run.scores(columns=SCORE_COLUMNS) if scores is None else scores).select(SCORE_COLUMNS)
    keep = pc.fill_null(pc.and_(pc.equal(scores.column("status"), "ok"), pc.is_valid(scores.column("ppl"))), False)
    scores = scores.filter(keep).drop(["status"])
    models = [m for m in pc.unique(scores.column("model")).to_pylist() if m in run.models]
    parts = [read_shards(run.files("verdicts", m), VERDICT_SCHEMA, [*_KEY, "correct"]) for m in models]
    verdicts = pa.concat_tables(parts) if parts else VERDICT_SCHEMA.empty_table().select([*_KEY, "correct"])
    return scores.join(verdicts, keys=_KEY, join_type="left outer", use_threads=False)


def _stats(values: np.ndarray) -> dict[str, Any]:
    if not values.size:
        return {"scored": 0, "p5": None, "q1": None, "median": None, "q3": None, "p95": None}
    p5, q1, med, q3, p95 = (float(x) for x in np.quantile(values, _QUANTILES))
    return {"scored": int(values.size), "p5": p5, "q1": q1, "median": med, "q3": q3, "p95": p95}


def ppl_by_verdict(run: SampleStore, scores: Optional[pa.Table] = None) -> list[dict[str, Any]]:
    """Per (model, scorer), sorted, three rows: PPL quantiles of the correct, incorrect and all samples
    (``scored``: how many count; ``p5``/``p95`` are the figure's whiskers). ``scores``: the run's
    ``SCORE_COLUMNS`` when the caller read them already (read here otherwise)."""
    table = _with_verdicts(run, scores)
    if table.num_rows == 0:
        return []
    model = pc.dictionary_encode(table.column("model")).combine_chunks()
    scorer = pc.dictionary_encode(table.column("scorer")).combine_chunks()
    m_idx, s_idx = model.indices.to_numpy(), scorer.indices.to_numpy()
    correct = table.column("correct").to_numpy(zero_copy_only=False)  # object: True / False / None
    ppl = table.column("ppl").to_numpy(zero_copy_only=False).astype(np.float64)
    group = m_idx.astype(np.int64) * len(scorer.dictionary) + s_idx
    order = np.argsort(group, kind="stable")
    starts = np.flatnonzero(np.r_[True, group[order][1:] != group[order][:-1]])
    rows: list[dict[str, Any]] = []
    for at, end in zip(starts, [*starts[1:], order.size]):
        idx = order[at:end]
        g = int(group[idx[0]])
        name, label = model.dictionary[g // len(scorer.dictionary)].as_py(), scorer.dictionary[g % len(scorer.dictionary)].as_py()
        ok = correct[idx]
        subsets = {"correct": ok == True, "incorrect": ok == False, "all": np.ones(idx.size, bool)}  # noqa: E712
        rows.extend({"model": name, "scorer": label, "verdict": v, **_stats(np.sort(ppl[idx][subsets[v]]))}
                    for v in VERDICTS)
    return sorted(rows, key=lambda r: (r["model"], r["scorer"], VERDICTS.index(r["verdict"])))


def headline(ppl: dict[str, Any], models: list[str]) -> Optional[dict[str, Any]]:
    """``PPL_base(R_correct)``: each model's correct answers under the base scorer (a row per model in
    the panel's order, with its incorrect and all beside); None when no scorer is known to be the base."""
    scorer = ppl.get("base_scorer")
    rows = {(r["model"], r["verdict"]): r for r in ppl.get("by_verdict", []) if r["scorer"] == scorer}
    if scorer is None or not rows:
        return None
    out = []
    for m in models:
        cells = {v: rows.get((m, v)) for v in VERDICTS}
        if any(cells.values()):
            out.append({"model": m, **{v: _strip(c) for v, c in cells.items()}})
    return {"scorer": scorer, "rows": out}


def _strip(row: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
    return None if row is None else {k: row[k] for k in ("scored", "p5", "q1", "median", "q3", "p95")}


def series_ppl(series: dict[str, Any], ppl: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """Median and quartiles of PPL under the base scorer of each checkpoint's samples, correct and all,
    in step order (a list per statistic), and the base's own for reference; None without scores."""
    if not ppl or ppl.get("base_scorer") is None:
        return None
    scorer = ppl["base_scorer"]
    rows = {(r["model"], r["verdict"]): r for r in ppl.get("by_verdict", []) if r["scorer"] == scorer}
    if not any((m, "all") in rows for m in series["labels"]):
        return None
    out: dict[str, Any] = {"scorer": scorer, "base": {}}
    for v in ("correct", "all"):
        out[v] = {stat: [(rows.get((m, v)) or {}).get(stat) for m in series["labels"]]
                  for stat in ("scored", "q1", "median", "q3")}
        base = rows.get((series["base"], v))
        out["base"][v] = None if base is None else {s: base[s] for s in ("scored", "q1", "median", "q3")}
    return out


def _png(fig: Any) -> bytes:
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


# -- figures -------------------------------------------------------------------------------------------

def verdict_figure(panels: list[dict[str, Any]]) -> bytes:
    """The headline figure: per benchmark, a box per model and verdict of PPL under the base scorer
    (boxes: quartiles; whiskers: 5th and 95th percentiles; from report.json's numbers), each box
    labelled with how many samples it holds."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import LogFormatter

    fig, axes = plt.subplots(1, len(panels), figsize=(6.0 * len(panels), 4.0), squeeze=False, layout="constrained")
    colors = {"correct": "#4a7", "incorrect": "#c55", "all": "#999"}
    for ax, bench in zip(axes[0], panels):
        head = bench["ppl"]["headline"]
        stats, where, tint, counts = [], [], [], []
        for j, row in enumerate(head["rows"]):
            for v_i, v in enumerate(VERDICTS):
                c = row[v]
                if c and c["scored"]:
                    stats.append({"med": c["median"], "q1": c["q1"], "q3": c["q3"], "whislo": c["p5"],
                                  "whishi": c["p95"], "label": ""})
                    where.append(j * 4 + v_i)
                    tint.append(colors[v])
                    counts.append(c["scored"])
        if stats:
            boxes = ax.bxp(stats, positions=where, showfliers=False, patch_artist=True, widths=0.8,
                           medianprops={"color": "black"})
            for patch, color in zip(boxes["boxes"], tint):
                patch.set_facecolor(color)
            for x, st, n in zip(where, stats, counts):
                ax.annotate(str(n), (x, st["whishi"]), textcoords="offset points", xytext=(0, 3), ha="center",
                            fontsize=7, color="#555")
        ax.set_xticks([j * 4 + 1 for j in range(len(head["rows"]))], [r["model"] for r in head["rows"]], fontsize=9)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))
        ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
        ax.set_ylabel(f"perplexity under {head['scorer']} (the base)")
        ax.set_title(f"{bench['name']}: PPL_base of each model's samples, by verdict", fontsize=10)
        ax.grid(alpha=0.3, axis="y", which="both")
        # Below the axes: inside, it would cover the tallest box's whisker and count.
        ax.legend(handles=[Patch(facecolor=colors[v], label=f"{v} samples") for v in VERDICTS], fontsize=8, ncol=3,
                  loc="upper center", bbox_to_anchor=(0.5, -0.08), frameon=False,
                  title="how many samples each box holds: the number above it", title_fontsize=7)
    return _png(fig)


def series_ppl_figure(series: dict[str, Any]) -> bytes:
    """Median PPL under the base of each checkpoint's samples (correct and all) against the step, with
    quartile bars, and the base's own correct answers for reference."""
    import matplotlib.pyplot as plt

    sp = series["ppl_base"]
    steps = np.array(series["steps"], dtype=float)
    fig, ax = plt.subplots(figsize=(6.0, 3.8), layout="constrained")
    for v, color in (("correct", "#4a7"), ("all", "#888")):
        med = np.array([np.nan if x is None else x for x in sp[v]["median"]], dtype=float)
        lo = np.array([np.nan if x is None else x for x in sp[v]["q1"]], dtype=float)
        hi = np.array([np.nan if x is None else x for x in sp[v]["q3"]], dtype=float)
        ax.errorbar(steps, med, yerr=np.vstack([med - lo, hi - med]), marker="o", capsize=3, lw=2, color=color,
                    label=f"{v} samples: median, quartiles")
    base = sp["base"]["correct"]
    if base and base["median"] is not None:
        ax.axhline(base["median"], color="grey", ls="--", lw=1, label=f"base ({series['base']}), correct")
    ax.set_xticks(steps, [str(s) for s in series["steps"]], fontsize=8)
    ax.set_xlabel(f"step ({series['step_source']})")
    ax.set_ylabel(f"perplexity under {sp['scorer']}")
    ax.set_title(f"{series['benchmark']}: PPL under the base over the series", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def ppl_figures(data: dict[str, Any]) -> dict[str, bytes]:
    """``ppl_verdict`` (where any benchmark has a headline) and ``series_ppl`` per scored series
    (``_1``, ``_2``... after the first series, as the series figures)."""
    out = {}
    panels = [b for b in data["benchmarks"] if b["ppl"] and b["ppl"].get("headline")]
    if panels:
        out["ppl_verdict"] = verdict_figure(panels)
    for i, s in enumerate(data["series"]):
        if s.get("ppl_base"):
            out["series_ppl" + ("" if i == 0 else f"_{i}")] = series_ppl_figure(s)
    return out


# -- the page ------------------------------------------------------------------------------------------

def _cell(p: str, c: Optional[dict[str, Any]]) -> str:
    if not c or not c["scored"]:
        return "<td>-</td>"
    return (f"<td>{num(p + 'median', c['median'], '{:.3f}')} [{num(p + 'q1', c['q1'], '{:.3f}')}, "
            f"{num(p + 'q3', c['q3'], '{:.3f}')}] ({num(p + 'scored', c['scored'])})</td>")


def verdict_html(data: dict[str, Any], figs: dict[str, bytes]) -> str:
    """The headline, ``PPL_base(R_correct)``, and per benchmark the table of every (model, scorer) by
    verdict: median [quartiles] (samples); nothing when no benchmark was scored."""
    scored = [(i, b) for i, b in enumerate(data["benchmarks"]) if b["ppl"] and b["ppl"].get("by_verdict")]
    if not scored:
        return ""
    out = ['<h3 id="ppl-correct">PPL<sub>base</sub>(R<sub>correct</sub>): each model\'s correct answers under the '
           "base</h3><p>The base model (at its sampling temperature) scores every model's samples; the correct ones "
           "are the study's figure: how likely the base finds what the other model gets right. Boxes: quartiles; "
           "whiskers: 5th and 95th percentiles.</p>"]
    if "ppl_verdict" in figs:
        out.append(img("ppl_verdict", figs["ppl_verdict"], "PPL under the base of each model's correct, incorrect "
                                                          "and all samples"))
    for i, bench in scored:
        head = bench["ppl"].get("headline")
        out.append(f"<h4>{esc(bench['name'])}: median [q1, q3] (samples) by verdict</h4>")
        scorer = bench["ppl"].get("base_scorer")
        if head is None and scorer is None:
            out.append('<p class="ppl-no-base">No scorer is known to be the base (the run\'s manifest does not record '
                       "the base's model and temperature): every scorer below, none singled out.</p>")
        elif head is None:
            out.append(f'<p class="ppl-no-base">The base\'s scorer, {esc(scorer)}, scored none of these samples '
                       f"(<code>passk score --scorer MODEL --temperature T</code> makes it): every scorer below.</p>")
        out.append('<div class="wide"><table class="ppl-verdict"><tr><th>samples by</th><th>scored under</th>'
                   + "".join(f"<th>{v}</th>" for v in VERDICTS) + "</tr>")
        rows = bench["ppl"]["by_verdict"]
        for j in range(0, len(rows), len(VERDICTS)):
            first = rows[j]
            mark = " (base)" if first["scorer"] == bench["ppl"].get("base_scorer") else ""
            cells = "".join(_cell(f"benchmarks.{i}.ppl.by_verdict.{j + v}.", rows[j + v]) for v in range(len(VERDICTS)))
            out.append(f"<tr><td>{esc(first['model'])}</td><td>{esc(first['scorer'])}{mark}</td>{cells}</tr>")
        out.append("</table></div>")
    return "".join(out)


def series_ppl_html(s_i: int, series: dict[str, Any], figs: dict[str, bytes]) -> str:
    """A series' PPL under the base per checkpoint (correct and all), as a figure and a table."""
    sp = series.get("ppl_base")
    if not sp:
        return ""
    name = "series_ppl" + ("" if s_i == 0 else f"_{s_i}")
    out = [f"<h4>PPL under the base ({esc(sp['scorer'])}) of each checkpoint's samples</h4>"]
    if name in figs:
        out.append(img(name, figs[name], "median PPL under the base of each checkpoint's samples against the step"))
    out.append("<table><tr><th>step</th><th>model</th><th>correct: median [q1, q3] (samples)</th>"
               "<th>all: median [q1, q3] (samples)</th></tr>")
    for j, (step, label) in enumerate(zip(series["steps"], series["labels"])):
        cells = ""
        for v in ("correct", "all"):
            p = f"series.{s_i}.ppl_base.{v}."
            col = sp[v]
            c = {k: col[k][j] for k in ("scored", "q1", "median", "q3")}
            cells += _cell_at(p, j, c)
        out.append(f"<tr><td>{esc(step)}</td><td>{esc(label)}</td>{cells}</tr>")
    return "".join(out) + "</table>"


def _cell_at(p: str, j: int, c: dict[str, Any]) -> str:
    if not c["scored"]:
        return "<td>-</td>"
    return (f"<td>{num(f'{p}median.{j}', c['median'], '{:.3f}')} [{num(f'{p}q1.{j}', c['q1'], '{:.3f}')}, "
            f"{num(f'{p}q3.{j}', c['q3'], '{:.3f}')}] ({num(f'{p}scored.{j}', c['scored'])})</td>")
