"""The findings paragraph: what the numbers say, one sentence per claim, every number a reference.

Each sentence is a list of parts: plain text, or a number given by its path in report.json (``key``),
its ``value`` (read from the data at that path, never recomputed) and its printed ``text``. The page
binds every such number to its path, so a reader (and the browser test) can check each one.
"""

from __future__ import annotations

from typing import Any, Optional, Union

Part = Union[str, dict[str, Any]]


def lookup(data: Any, key: str) -> Any:
    """The value at a dotted report.json path (list positions are numbers)."""
    for part in key.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def _fmt(value: Any, fmt: str) -> str:
    if value is None:
        return "-"
    return fmt.format(value) if isinstance(value, float) or "%" in fmt else str(value)


class _Sentence:
    def __init__(self, data: dict[str, Any], row: dict[str, Any], kind: str) -> None:
        self.data = data
        self.parts: list[Part] = []
        self.benchmark, self.model, self.kind = row["benchmark"], row["model"], kind

    def text(self, s: str) -> _Sentence:
        self.parts.append(s)
        return self

    def num(self, key: str, fmt: str = "{:.3f}") -> _Sentence:
        value = lookup(self.data, key)
        self.parts.append({"key": key, "value": value, "text": _fmt(value, fmt)})
        return self

    def done(self) -> dict[str, Any]:
        text = "".join(p if isinstance(p, str) else p["text"] for p in self.parts)
        return {"benchmark": self.benchmark, "model": self.model, "kind": self.kind, "text": text,
                "parts": self.parts}


def _crossing(data: dict[str, Any], p: str, row: dict[str, Any]) -> _Sentence:
    lower = row["crossing_lower"]
    other = row["model"] if lower == row["base"] else row["base"]
    if row["crossing_k"] == 1:  # level at k = 1: neither starts lower
        return (_Sentence(data, row, "crossing").text(f"On {row['benchmark']}, {lower} and {other} are level at k = ")
                .num(p + "crossing_k").text(" (pass@").num(p + "crossing_k").text(" ").num(p + "pass_at_1_base")
                .text(f" for {row['base']}, ").num(p + "pass_at_1_model").text(f" for {row['model']})."))
    s = _Sentence(data, row, "crossing").text(f"On {row['benchmark']}, {lower} starts lower at pass@1 ")
    if row["crossing_k"] is None:
        return (s.text(f"and stays below {other} for every k up to ").num(p + "k_max")
                .text("; the curves cross in ").num(p + "crossing_fraction", "{:.1%}").text(" of ")
                .num("interval_target", "{}").text(" resamples."))
    s.text(f"and reaches {other} at k = ").num(p + "crossing_k").text(" (").num("bootstrap.ci", "{:.0%}")
    s.text(" ").num("interval_target", "{}").text(" interval ")
    if row["crossing_ci_low"] is None:  # most resamples never cross: the point k is a tie the draws break
        s.text("beyond k = ").num(p + "k_max")
    elif row["crossing_ci_high"] is None:
        s.num(p + "crossing_ci_low").text(" to beyond k = ").num(p + "k_max")
    else:
        s.num(p + "crossing_ci_low").text(" to ").num(p + "crossing_ci_high")
    return s.text("; the curves cross in ").num(p + "crossing_fraction", "{:.1%}").text(" of resamples).")


def _coverage(data: dict[str, Any], p: str, row: dict[str, Any]) -> _Sentence:
    b, m = row["base"], row["model"]
    return (_Sentence(data, row, "coverage").text("With k = ").num(p + "k_max")
            .text(f" samples, {m} solves ").num(p + "solved_model").text(" of ").num(p + "problems")
            .text(f" problems and {b} ").num(p + "solved_base").text(", a coverage difference of ")
            .num(p + "coverage_difference").text(" (").num("interval_target", "{}").text(" interval ")
            .num(p + "coverage_difference_ci.0").text(" to ")
            .num(p + "coverage_difference_ci.1").text("); ").num(p + "only_base")
            .text(f" are solved only by {b} and ").num(p + "only_model").text(f" only by {m}."))


def _gap(data: dict[str, Any], p: str, row: dict[str, Any]) -> _Sentence:
    return (_Sentence(data, row, "gap").text(f"The sampling-efficiency gap, pass@1 of {row['model']} "
                                                          "minus pass@").num(p + "gap_k_max")
            .text(f" of {row['base']}, is ").num(p + "gap").text(" (").num("interval_target", "{}")
            .text(" interval ").num(p + "gap_ci_low")
            .text(" to ").num(p + "gap_ci_high").text(").") )


def _ppl(data: dict[str, Any], i: int, row: dict[str, Any]) -> Optional[_Sentence]:
    ppl = data["benchmarks"][i]["ppl"]
    scorer = ppl.get("base_scorer") if ppl else None
    if scorer is None:
        return None
    where = {(s["model"], s["scorer"]): j for j, s in enumerate(ppl["summary"])}
    jm, jb = where.get((row["model"], scorer)), where.get((row["base"], scorer))
    if jm is None or jb is None or ppl["summary"][jm]["median"] is None or ppl["summary"][jb]["median"] is None:
        return None
    q = f"benchmarks.{i}.ppl.summary."
    return (_Sentence(data, row, "ppl")
            .text(f"Under {scorer} (the base at its sampling temperature), {row['model']}'s samples have median "
                  "perplexity ").num(f"{q}{jm}.median").text(" (quartiles ").num(f"{q}{jm}.q1").text(" to ")
            .num(f"{q}{jm}.q3").text(f") and {row['base']}'s own samples ").num(f"{q}{jb}.median")
            .text(" (").num(f"{q}{jb}.q1").text(" to ").num(f"{q}{jb}.q3").text(")."))


def _ppl_correct(data: dict[str, Any], i: int, row: dict[str, Any]) -> Optional[_Sentence]:
    """PPL_base(R_correct): the model's correct answers under the base, against the base's own."""
    head = (data["benchmarks"][i]["ppl"] or {}).get("headline")
    if head is None:
        return None
    where = {r["model"]: j for j, r in enumerate(head["rows"])}
    jm, jb = where.get(row["model"]), where.get(row["base"])
    if jm is None or jb is None or not (head["rows"][jm]["correct"] or {}).get("scored") \
            or not (head["rows"][jb]["correct"] or {}).get("scored"):
        return None
    q = f"benchmarks.{i}.ppl.headline.rows."
    return (_Sentence(data, row, "ppl_correct")
            .text(f"PPL_base(R_correct): under {head['scorer']}, {row['model']}'s correct answers have median "
                  "perplexity ").num(f"{q}{jm}.correct.median").text(" (quartiles ").num(f"{q}{jm}.correct.q1")
            .text(" to ").num(f"{q}{jm}.correct.q3").text("; n = ").num(f"{q}{jm}.correct.scored")
            .text(f"), {row['base']}'s own correct answers ").num(f"{q}{jb}.correct.median")
            .text(" (").num(f"{q}{jb}.correct.q1").text(" to ").num(f"{q}{jb}.correct.q3").text("; n = ")
            .num(f"{q}{jb}.correct.scored").text(")."))


def _series_ppl(data: dict[str, Any], s_i: int, series: dict[str, Any]) -> Optional[_Sentence]:
    """How the median PPL under the base of the checkpoints' correct answers moves from first to last."""
    sp = series.get("ppl_base") or {}
    med = sp.get("correct", {}).get("median") or []
    if len(med) < 2 or med[0] is None or med[-1] is None:
        return None
    last = len(med) - 1
    p = f"series.{s_i}."
    row = {"benchmark": series["benchmark"], "model": series["labels"][-1]}
    return (_Sentence(data, row, "series_ppl")
            .text(f"Over the series {', '.join(series['labels'])}, the median perplexity under {sp['scorer']} "
                  "of the correct answers goes from ").num(f"{p}ppl_base.correct.median.0")
            .text(" at step ").num(f"{p}steps.0").text(" to ").num(f"{p}ppl_base.correct.median.{last}")
            .text(" at step ").num(f"{p}steps.{last}").text("."))


def _entropy(data: dict[str, Any], r: int, row: dict[str, Any]) -> Optional[_Sentence]:
    if row["self"] is None or row["under_base"] is None or row["model"] == row["base"]:
        return None
    p = f"entropy.rows.{r}."
    return (_Sentence(data, row, "entropy")
            .text(f"{row['model']}'s samples have a token-weighted mean entropy of ").num(p + "self.mean_entropy")
            .text(f" nats per token under itself ({row['self_scorer']}) and ").num(p + "under_base.mean_entropy")
            .text(f" under {row['base']} ({row['base_scorer']})."))


def findings(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The sentences, in order: per benchmark and model against the base, crossing, coverage, gap and
    PPL; then entropy where the run was scored under the sampling models."""
    out: list[dict[str, Any]] = []
    for i, bench in enumerate(data["benchmarks"]):
        for j, row in enumerate(bench["summary"]):
            p = f"benchmarks.{i}.summary.{j}."
            sentences = [_crossing(data, p, row), _coverage(data, p, row), _gap(data, p, row), _ppl(data, i, row),
                         _ppl_correct(data, i, row)]
            out.extend(s.done() for s in sentences if s is not None)
    for s_i, series in enumerate(data["series"]):
        s = _series_ppl(data, s_i, series)
        if s is not None:
            out.append(s.done())
    for r, row in enumerate((data.get("entropy") or {}).get("rows", [])):
        s = _entropy(data, r, row)
        if s is not None:
            out.append(s.done())
    return out
