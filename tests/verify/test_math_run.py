"""`passk verify` on a run with hostile math answers: the other samples' verdicts and counts do not move."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from passkcore.cli import main
from passkcore.pipeline.store import SampleStore
from passkcore.problems import arithmetic

HOSTILE = ["\\boxed{9^{9^{9^{9}}}}", "\\boxed{\\int_0^\\infty e^{-x^{2}} \\sin(x^{99}) dx}",
           "The answer is " + "9" * 200_000]


def _run(root: Path, hostile: bool) -> SampleStore:
    problems = arithmetic(3, seed=7)
    store = SampleStore.open_run(root, problems, {"spec": "arith", "limit": 3, "seed": 7})
    rows: list[dict[str, Any]] = []
    for j, p in enumerate(problems):
        answers = [f"\\boxed{{{p.answer}}}", f"so it is {p.answer}", "\\boxed{-1}", "no idea",
                   f"first 3, then $\\boxed{{{p.answer}}}$"]
        if hostile:  # one per problem, the last sample
            answers.append(HOSTILE[j])
        for i, response in enumerate(answers):
            rows.append({"model": "m", "problem_id": p.id, "sample_index": i, "seed": 1, "prompt_token_ids": [1],
                         "response_token_ids": [2], "response": response, "finish_reason": "stop",
                         "cumulative_logprob": -1.0})
    store.write_samples(rows)
    return store


def _verdicts(store: SampleStore) -> dict[tuple[str, int], tuple[Any, ...]]:
    table = store.samples(columns=["problem_id", "sample_index", "correct", "reason", "answer_key", "extract_policy"])
    return {(r["problem_id"], r["sample_index"]): (r["correct"], r["reason"], r["answer_key"], r["extract_policy"])
            for r in table.to_pylist()}


@pytest.mark.slow
def test_hostile_answers_leave_the_counts_alone(tmp_path: Path) -> None:
    clean, dirty = _run(tmp_path / "clean", False), _run(tmp_path / "dirty", True)
    for store in (clean, dirty):
        assert main(["verify", str(store.root), "--timeout", "1.5", "--workers", "2"]) == 0
    before, after = _verdicts(clean), _verdicts(dirty)
    assert {k: v for k, v in after.items() if k in before} == before
    assert [after[k][1] for k in sorted(after) if k[1] == 5][:2] == ["timeout", "timeout"]
    c_clean = {r["problem_id"]: r["c"] for r in clean.counts().to_pylist()}
    c_dirty = {r["problem_id"]: (r["n"], r["c"]) for r in dirty.counts().to_pylist()}
    assert c_clean == {pid: c for pid, (n, c) in c_dirty.items()} and set(c_clean.values()) == {3}
    assert {n for n, _ in c_dirty.values()} == {6}
    assert {v[3] for v in after.values()} == {"fallback"}


def test_boxed_policy_is_recorded(tmp_path: Path) -> None:
    store = _run(tmp_path, False)
    assert main(["verify", str(store.root), "--math-extract", "boxed"]) == 0
    verdicts = _verdicts(store)
    assert {v[3] for v in verdicts.values()} == {"boxed"}
    # "so it is N" has no box: no answer under this policy; the boxed answers still pass.
    assert {v[1] for k, v in verdicts.items() if k[1] == 1} == {"no_answer"}
    assert {r["c"] for r in store.counts().to_pylist()} == {2}
    keys = {k: v[2] for k, v in verdicts.items()}
    assert all(keys[(pid, 0)] == keys[(pid, 4)] for pid, _ in keys)
