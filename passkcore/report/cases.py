"""Case studies: the problems that decide a comparison, with the samples behind their numbers.

Per benchmark, two rules choose problems (``why``):

- ``only_solved``: a coverage-difference cell at k = n against the base. For the base, the problems it
  solves that some other model does not; for every other model, those it solves and the base does not
  (``not_solved_by`` names the models with no correct sample).
- ``hardest_solved``: per model, the ``hardest`` problems with the lowest c / n > 0 that the first rule
  did not already show for that model (ties: larger n first, then the problems' order).

Each case shows up to ``samples`` correct samples of its model (a seeded choice, the same on every
report of the same run and seed) and one incorrect sample for contrast, with the verdict's reason, the
response's length in tokens and, in a scored run, its PPL under the base (the base model at its sampling
temperature, ``entropy.own_scorer``). Only the chosen problems' rows are read: shards are scanned through
Arrow with a filter on ``problem_id`` (and, for texts, ``sample_index``), batch by batch, so memory
holds the chosen rows, never the run.

``label`` is null until an audit labels a sample: ``sample_labels`` is where labels come in.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from passkcore.audit.store import latest_labels, read_audits
from passkcore.numbers.coverage import Coverage
from passkcore.pipeline.run import SAMPLE_SCHEMA, SCORE_SCHEMA, VERDICT_SCHEMA, read_shards
from passkcore.pipeline.store import SampleStore
from passkcore.problems import Problem, choice_letter

DEFAULT_CASE_SAMPLES = 3
HARDEST = 3  # hardest solved problems per model, besides the coverage-difference cells
NEEDS_RUN = ("case studies need the samples' texts: this benchmark was given as a count file (n and c only); "
             "give its run directory")
# (model, problem_id, sample_index) -> an audit's label of that sample.
Labels = Mapping[tuple[str, str, int], str]


def check_case_samples(value: Any) -> int:
    """``--case-samples M``: a non-negative integer (0 leaves the case studies out)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"case_samples must be a non-negative integer (--case-samples M), got {value!r}")
    return value


def sample_labels(run: SampleStore, audits: Optional[pa.Table] = None) -> dict[tuple[str, str, int], str]:
    """Audit labels of a run's samples, keyed (model, problem_id, sample_index): where the report's
    case studies get each sample's ``label``: the latest label a person gave (``passkcore.audit``; a
    judge's labels are not shown here). Empty until the run holds audits. ``audits``: the run's audits
    table when the caller has read it."""
    return {key: row["label"] for key, row in latest_labels(read_audits(run) if audits is None else audits).items()}


def choose_problems(cov: Coverage, base: str, k: int, hardest: int = HARDEST) -> list[dict[str, Any]]:
    """The chosen (model, problem) pairs in report order: ``only_solved`` cells, then ``hardest_solved``."""
    ids = cov.problem_ids
    models = cov.models
    counts = {m: cov.counts(m) for m in models}
    solved = {m: counts[m][1] > 0 for m in models}
    chosen: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    others = [m for m in models if m != base]
    for m in models:
        rivals = others if m == base else [base]
        for j in np.flatnonzero(solved[m]):
            losers = [r for r in rivals if not solved[r][j]]
            if losers:
                chosen.append({"model": m, "at": int(j), "why": "only_solved", "not_solved_by": losers})
                seen.add((m, int(j)))
    for m in models:
        n, c = counts[m]
        rate = np.where(c > 0, c / np.maximum(n, 1), np.inf)
        order = np.lexsort((np.arange(ids.size), -n, rate))  # lowest c/n, then larger n, then problem order
        picked = [int(j) for j in order if np.isfinite(rate[j]) and (m, int(j)) not in seen][:hardest]
        chosen.extend({"model": m, "at": j, "why": "hardest_solved", "not_solved_by": []} for j in picked)
    for case in chosen:
        case["problem_id"] = str(ids[case["at"]])
        case["n"], case["c"] = (int(x[case["at"]]) for x in counts[case["model"]])
        case["counts"] = [{"model": m, "n": int(counts[m][0][case["at"]]), "c": int(counts[m][1][case["at"]])}
                          for m in models]
        case["k"] = k
    return chosen


def _isin(column: str, values: Sequence[Any], kind: pa.DataType) -> pc.Expression:
    return pc.field(column).isin(pa.array(list(values), kind))


def _verdicts(run: SampleStore, model: str, pids: Sequence[str]) -> dict[str, list[tuple[int, bool]]]:
    """(sample_index, correct) of one model's samples of these problems, per problem, by index."""
    table = read_shards(run.files("verdicts", model), VERDICT_SCHEMA, ["problem_id", "sample_index", "correct"],
                        filter=_isin("problem_id", pids, pa.string()))
    out: dict[str, list[tuple[int, bool]]] = {}
    for pid, idx, ok in sorted(zip(*(table.column(c).to_pylist() for c in table.column_names)),
                               key=lambda r: (r[0], r[1])):
        out.setdefault(pid, []).append((int(idx), bool(ok)))
    return out


def pick_samples(verdicts: Sequence[tuple[int, bool]], m: int, seed: int, model: str, pid: str) -> list[int]:
    """Up to ``m`` correct sample indices (seeded, ascending), then one incorrect one where there is one.
    The generator is seeded by the report's seed and the (model, problem) pair, so the choice does not
    depend on which other problems were chosen."""
    rng = np.random.default_rng([seed, zlib.crc32(f"{model}\x1f{pid}".encode())])
    right = np.array([i for i, ok in verdicts if ok], np.int64)
    wrong = np.array([i for i, ok in verdicts if not ok], np.int64)
    take = sorted(int(i) for i in rng.choice(right, size=min(m, right.size), replace=False)) if right.size else []
    return take + ([int(rng.choice(wrong))] if wrong.size else [])


def _key(row: Mapping[str, Any]) -> tuple[str, int]:
    return str(row["problem_id"]), int(row["sample_index"])


def _texts(run: SampleStore, model: str, wanted: set[tuple[str, int]]) -> dict[tuple[str, int], dict[str, Any]]:
    """Response, length in tokens and verdict of the wanted samples of one model: filtered scans of its
    sample and verdict shards (the filter keeps the wanted problems' rows at the wanted indices)."""
    where = (_isin("problem_id", sorted({p for p, _ in wanted}), pa.string())
             & _isin("sample_index", sorted({i for _, i in wanted}), pa.int32()))
    s = read_shards(run.files("samples", model), SAMPLE_SCHEMA,
                    ["problem_id", "sample_index", "response", "response_token_ids"], filter=where)
    s = s.append_column("num_tokens", pc.list_value_length(s.column("response_token_ids"))).drop(["response_token_ids"])
    v = read_shards(run.files("verdicts", model), VERDICT_SCHEMA,
                    ["problem_id", "sample_index", "correct", "reason", "extracted_answer"], filter=where)
    out = {_key(r): {"response": r["response"], "num_tokens": r["num_tokens"] or None}
           for r in s.to_pylist() if _key(r) in wanted}
    for r in v.to_pylist():
        if _key(r) in out:
            out[_key(r)].update(correct=r["correct"], reason=r["reason"], extracted_answer=r["extracted_answer"])
    return out


def _scores(run: SampleStore, scorer: Optional[str], model: str,
            pids: Sequence[str]) -> dict[tuple[str, int], dict[str, Any]]:
    """PPL (rows scored ok) and token count of one model's samples of these problems under ``scorer``."""
    if scorer is None or scorer not in run.scorers():
        return {}
    where = (pc.field("model") == model) & _isin("problem_id", pids, pa.string())
    table = read_shards(run.files("scores", scorer), SCORE_SCHEMA,
                        ["problem_id", "sample_index", "num_tokens", "ppl", "status"], filter=where)
    return {_key(r): {"ppl": r["ppl"] if r["status"] == "ok" else None, "num_tokens": r["num_tokens"]}
            for r in table.to_pylist()}


def _reference(p: Problem) -> Optional[str]:
    """What decides the problem: the reference answer (with its option's text), else the tests."""
    if p.answer is not None:
        if p.choices and len(p.answer) == 1 and 0 <= ord(p.answer.upper()) - ord("A") < len(p.choices):
            return f"{p.answer} ({p.choices[ord(p.answer.upper()) - ord('A')]})"
        return p.answer
    if p.tests is not None:
        return p.tests
    if p.outputs is not None:
        return "\n".join(f"{i!r} -> {o!r}" for i, o in zip(p.inputs or [], p.outputs))
    return None


def _problem_text(p: Problem) -> str:
    if not p.choices:
        return p.prompt
    return p.prompt + "\n\nChoices:\n" + "\n".join(f"({choice_letter(k)}) {c}" for k, c in enumerate(p.choices))


def _problems(run: SampleStore) -> dict[str, Problem]:
    try:
        return {p.id: p for p in run.problems()}
    except ValueError:  # a run without problems.jsonl: cases without problem texts
        return {}


def case_studies(bench: str, run: SampleStore, cov: Coverage, base: str, k: int, *, samples: int = DEFAULT_CASE_SAMPLES,
                 seed: int = 0, base_scorer: Optional[str] = None, hardest: int = HARDEST,
                 labels: Optional[Labels] = None) -> list[dict[str, Any]]:
    """The benchmark's case studies (report.json ``case_studies``): chosen by ``choose_problems``, each
    with its problem, reference, every model's (n, c) and its chosen samples. ``labels`` maps
    (model, problem_id, sample_index) to an audit's label (default: none, every ``label`` null)."""
    if samples == 0:
        return []
    labels = labels or {}
    chosen = choose_problems(cov, base, k, hardest)
    problems = _problems(run)
    by_model: dict[str, list[dict[str, Any]]] = {}
    for case in chosen:
        by_model.setdefault(case["model"], []).append(case)
    for model, cases in by_model.items():
        pids = sorted({c["problem_id"] for c in cases})
        verdicts = _verdicts(run, model, pids)
        for case in cases:
            case["indices"] = pick_samples(verdicts.get(case["problem_id"], []), samples, seed, model, case["problem_id"])
        wanted = {(c["problem_id"], i) for c in cases for i in c["indices"]}
        texts = _texts(run, model, wanted) if wanted else {}
        scores = _scores(run, base_scorer, model, pids)
        for case in cases:
            case["samples"] = [_sample(model, case["problem_id"], i, texts, scores, labels) for i in case["indices"]]
    root = run.root
    out = []
    for case in chosen:
        p = problems.get(case["problem_id"])
        out.append({"benchmark": bench, "model": case["model"], "problem_id": case["problem_id"], "why": case["why"],
                    "n": case["n"], "c": case["c"], "k": case["k"], "not_solved_by": case["not_solved_by"],
                    "counts": case["counts"], "problem": None if p is None else _problem_text(p),
                    "reference": None if p is None else _reference(p),
                    "images": [_relative(x, root) for x in (p.images or [])] if p is not None else [],
                    "ppl_scorer": base_scorer, "samples": case["samples"]})
    return out


def _relative(path: str, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path


def _sample(model: str, pid: str, index: int, texts: Mapping[tuple[str, int], dict[str, Any]],
            scores: Mapping[tuple[str, int], dict[str, Any]], labels: Labels) -> dict[str, Any]:
    t = texts.get((pid, index), {})
    s = scores.get((pid, index), {})
    return {"sample_index": index, "response": t.get("response"), "correct": t.get("correct"),
            "reason": t.get("reason"), "num_tokens": t.get("num_tokens") or s.get("num_tokens"),
            "ppl_base": s.get("ppl"), "label": labels.get((model, pid, index)),
            "extracted_answer": t.get("extracted_answer")}
