"""The report's figures (matplotlib, Agg), as PNG bytes per name."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from passkcore.report.audit import audit_figure
from passkcore.report.perplexity import ppl_figures


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _grid(count: int, width: float, height: float) -> tuple[Any, list[Any]]:
    """Side-by-side panels, two per row (the paper's Figure 2 is a grid of benchmarks)."""
    import matplotlib.pyplot as plt

    cols = min(count, 2)
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, layout="constrained")
    flat = list(axes.ravel())
    for ax in flat[count:]:
        ax.set_visible(False)
    return fig, flat[:count]


def _colors() -> list[str]:
    import matplotlib.pyplot as plt

    return list(plt.rcParams["axes.prop_cycle"].by_key()["color"])


def pass_at_k_panel(ax: Any, bench: dict[str, Any], ci: float, title: str) -> None:
    colors = _colors()
    ks = np.array(bench["k"])
    for i, m in enumerate(bench["models"]):
        c = bench["curves"][m]
        ax.plot(ks, c["pass_at_k"], color=colors[i % len(colors)], label=m, lw=2)
        ax.fill_between(ks, c["ci_low"], c["ci_high"], color=colors[i % len(colors)], alpha=0.2, lw=0)
    # Only the crossings with the base are marked: with a series, those among checkpoints would pile up.
    marked = [c for c in bench["crossings"] if c["k"] is not None and bench["base"] in (c["a"], c["b"])]
    for cross in marked:
        ax.axvline(cross["k"], color="grey", ls="--", lw=1)
    if marked:
        ax.text(0.98, 0.03, "\n".join(f"{c['a']} reaches {c['b']} at k = {c['k']}" for c in marked),
                transform=ax.transAxes, ha="right", va="bottom", fontsize=8,
                bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"})
    if ks.size > 1:
        ax.set_xscale("log", base=2)
    ax.set_xlabel("k (samples per problem)")
    ax.set_ylabel("pass@k (mean over problems)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")


def _accuracy(ax: Any, bench: dict[str, Any]) -> None:
    colors = _colors()
    names = bench["models"]
    labels = bench["histograms"][names[0]]["labels"]
    width = 0.8 / len(names)
    for i, m in enumerate(names):
        counts = np.array(bench["histograms"][m]["counts"])
        ax.bar(np.arange(len(labels)) + i * width, counts / counts.sum(), width, label=m, color=colors[i % len(colors)])
    ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2, labels, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("share of problems")
    ax.set_xlabel("accuracy c / n")
    ax.set_title(f"{bench['name']}: accuracy histogram")
    ax.legend(fontsize=8)


def _ppl(ax: Any, bench: dict[str, Any]) -> None:
    keys = sorted(bench["ppl"]["values"])
    ax.boxplot([bench["ppl"]["values"][k] for k in keys], showfliers=False)
    ax.set_xticks(range(1, len(keys) + 1), [k.replace("|", "\nunder ") for k in keys], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("perplexity of the response")
    ax.set_title(f"{bench['name']}: PPL of each policy's samples under each scorer")


def _cover(ax: Any, bench: dict[str, Any]) -> None:
    colors = _colors()
    for i, (m, block) in enumerate(bench["metrics"]["models"].items()):
        ax.plot(block["cover"]["tau"], block["cover"]["value"], color=colors[i % len(colors)], label=m, lw=2, marker=".")
    ax.set_xlabel("tau (share of the n samples correct)")
    ax.set_ylabel("cover@tau (share of problems)")
    ax.set_title(f"{bench['name']}: cover@tau")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")


def series_figure(series: dict[str, Any]) -> bytes:
    """pass@k at each chosen k against the step, with intervals and the base for reference."""
    fig, axes = _grid(len(series["values"]), 5.0, 3.8)
    steps = np.array(series["steps"], dtype=float)
    for ax, row in zip(axes, series["values"]):
        est = np.array(row["pass_at_k"])
        err = np.vstack([est - np.array(row["ci_low"]), np.array(row["ci_high"]) - est])
        ax.errorbar(steps, est, yerr=err, marker="o", capsize=3, lw=2, label="checkpoints")
        base = row["base"]
        ax.axhline(base["pass_at_k"], color="grey", ls="--", lw=1, label=f"base ({series['base']})")
        ax.axhspan(base["ci_low"], base["ci_high"], color="grey", alpha=0.15, lw=0)
        ax.set_xticks(steps, [str(s) for s in series["steps"]], fontsize=8)
        ax.set_xlabel(f"step ({series['step_source']})")
        ax.set_ylabel(f"pass@{row['k']}")
        ax.set_title(f"{series['benchmark']}: pass@{row['k']} over the series")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _png(fig)


def series_coverage_figure(series: dict[str, Any]) -> bytes:
    """Problems solved by the row model and not by the column model (k = n, any correct sample)."""
    import matplotlib.pyplot as plt

    m = series["coverage"]["matrix"]
    mat = np.array(m["solved_by_row_not_col"])
    size = 1.2 + 0.7 * len(m["models"])
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(mat, cmap="Blues")
    for (i, j), v in np.ndenumerate(mat):
        if i != j:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=9,
                    color="white" if v > mat.max() / 2 else "black")
    ax.set_xticks(range(len(m["models"])), m["models"], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(m["models"])), m["models"], fontsize=8)
    ax.set_xlabel("not solved by")
    ax.set_ylabel("solved by")
    ax.set_title(f"{series['benchmark']}: coverage at k = {series['coverage']['k']}", fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return _png(fig)


def entropy_figure(entropy: dict[str, Any]) -> bytes:
    """Token-weighted mean entropy of each model's samples under itself and under the base."""
    import matplotlib.pyplot as plt

    rows = entropy["rows"]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(rows) + 2), 3.8))
    x = np.arange(len(rows))
    for shift, key, label in ((-0.2, "self", "under itself (sampling model and temperature)"),
                              (0.2, "under_base", "under the base")):
        vals = [np.nan if r[key] is None else r[key]["mean_entropy"] for r in rows]
        ax.bar(x + shift, vals, 0.4, label=label)
    multi = len({r["benchmark"] for r in rows}) > 1
    ax.set_xticks(x, [f"{r['benchmark']}\n{r['model']}" if multi else r["model"] for r in rows], fontsize=8)
    top = np.nanmax([r[k]["mean_entropy"] for r in rows for k in ("self", "under_base") if r[k]] or [1.0])
    ax.set_ylim(0, 1.4 * top)  # room for the legend above the bars
    ax.set_ylabel("mean entropy per token (nats)")
    ax.set_title("entropy of each model's samples (token-weighted)")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3, axis="y")
    return _png(fig)


def figures(data: dict[str, Any]) -> dict[str, bytes]:
    """PNG bytes per figure name: ``pass_at_k`` (a panel per benchmark), ``accuracy``, ``cover`` (cover@tau
    curves per model, a panel per benchmark), ``ppl`` (where
    scored), ``series``/``series_coverage`` per series (``_1``, ``_2``... after the first),
    ``entropy``, and ``ppl_verdict`` / ``series_ppl`` (``passkcore.report.perplexity``)."""
    import matplotlib

    matplotlib.use("Agg")
    benches = data["benchmarks"]
    ci = data["bootstrap"]["ci"]
    out: dict[str, bytes] = {}
    fig, axes = _grid(len(benches), 7.5 if len(benches) == 1 else 6.0, 4.5)
    for ax, bench in zip(axes, benches):
        title = f"pass@k with {ci:.0%} {data.get('interval_target', 'population')} bands"
        pass_at_k_panel(ax, bench, ci, title if len(benches) == 1 else f"{bench['name']}: {title}")
    out["pass_at_k"] = _png(fig)
    fig, axes = _grid(len(benches), 7.5 if len(benches) == 1 else 6.0, 3.8)
    for ax, bench in zip(axes, benches):
        _accuracy(ax, bench)
    out["accuracy"] = _png(fig)
    fig, axes = _grid(len(benches), 6.0, 3.6)
    for ax, bench in zip(axes, benches):
        _cover(ax, bench)
    out["cover"] = _png(fig)
    scored = [b for b in benches if b["ppl"]]
    if scored:
        fig, axes = _grid(len(scored), 7.5, 4.0)
        for ax, bench in zip(axes, scored):
            _ppl(ax, bench)
        out["ppl"] = _png(fig)
    for i, series in enumerate(data["series"]):
        suffix = "" if i == 0 else f"_{i}"
        out[f"series{suffix}"] = series_figure(series)
        out[f"series_coverage{suffix}"] = series_coverage_figure(series)
    if data["entropy"]:
        out["entropy"] = entropy_figure(data["entropy"])
    out.update(ppl_figures(data))  # ppl_verdict, series_ppl: perplexity as the study uses it
    out.update(audit_figure(data))  # audit_pass_at_k, where an audit found a guess
    return out
