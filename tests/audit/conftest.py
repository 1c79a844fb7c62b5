"""A small verified run for the audit tests: arithmetic problems, two models, verdicts written directly."""

from __future__ import annotations

from pathlib import Path

import pytest

from passkcore.pipeline.store import SampleStore
from passkcore.problems import arithmetic

# correct samples per (model, problem number) among N samples: model a solves problem 0 rarely (hardest).
N = 8
CORRECT = {"a": [1, 3, 8, 0], "b": [2, 5, 0, 4]}


def audit_run(root: Path) -> SampleStore:
    problems = arithmetic(4, seed=3)
    store = SampleStore.open_run(root, problems, {"spec": "arith", "limit": 4, "seed": 3})
    rows, verdicts = [], []
    for model, right in CORRECT.items():
        for p, c in zip(problems, right):
            for i in range(N):
                ok = i < c
                base = {"model": model, "problem_id": p.id, "sample_index": i}
                text = f"<script>alert('{model}')</script> so the answer is \\boxed{{{p.answer if ok else -1}}}"
                rows.append({**base, "seed": 1, "prompt_token_ids": [1], "response_token_ids": [2], "response": text,
                             "finish_reason": "stop", "cumulative_logprob": -1.0})
                verdicts.append({**base, "correct": ok, "extracted_answer": p.answer if ok else "-1", "verifier": "math",
                                 "reason": "ok" if ok else "wrong_answer"})
    store.write_samples(rows)
    store.write_verdicts(verdicts)
    return store


@pytest.fixture
def run(tmp_path: Path) -> SampleStore:
    return audit_run(tmp_path / "run")
