"""``passk audit judge``: the judge's answers parsed into labels, stored under judge:<model>, and its
agreement with people (Cohen's kappa); the engine itself in the slow test (the embedded SmolLM2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from passkcore.audit import audit_queue, cohen_kappa, latest_labels, read_audits
from passkcore.audit.judge import judge_run, parse_verdict
from passkcore.cli import main
from passkcore.pipeline.store import SampleStore


class FakeTokenizer:
    chat_template = None

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return [1] * len(text.split())


class FakeJudge:
    """Answers in turn from a script; records the prompts it was given."""

    def __init__(self, answers: list[str]) -> None:
        self.answers, self.calls = answers, 0

    def get_tokenizer(self) -> FakeTokenizer:
        return FakeTokenizer()

    def generate(self, inputs: list[dict[str, Any]], params: Any, use_tqdm: bool = False) -> list[Any]:
        self.calls += 1
        return [SimpleNamespace(outputs=[SimpleNamespace(text=self.answers[i % len(self.answers)])])
                for i in range(len(inputs))]


@pytest.mark.parametrize("text, label", [
    ("VALID", "valid"), ("Guess.", "guess"), ("**Verdict:** guess", "guess"), ("The answer is a guess", "guess"),
    ("It is not a guess. Verdict: VALID", "valid"), ("hmm", None), ("valid or guess?", "valid"),
    ("Maybe valid, maybe a guess", None), ("Label = unsure", "unsure"),
])
def test_parse_verdict(text: str, label: str | None) -> None:
    assert parse_verdict(text) == label


def _people(run: SampleStore, tmp_path: Path, labels: list[str]) -> list[Any]:
    queue = audit_queue(run, hardest=2, per_problem=2)
    out = tmp_path / "people.jsonl"
    out.write_text("".join(json.dumps({"problem_id": q.problem_id, "model": q.model, "sample_index": q.sample_index,
                                       "label": lab}) + "\n" for q, lab in zip(queue, labels)))
    assert main(["audit", "apply", str(run.root), str(out), "--auditor", "ann"]) == 0
    return queue


def test_judge_labels_storage_and_agreement(run: SampleStore, tmp_path: Path) -> None:
    queue = _people(run, tmp_path, ["valid", "guess", "valid", "valid"])
    # What follows the prompt's "Verdict:", as a model writes it.
    answers = [" VALID", " guess\nverdict: guess", " GUESS", " valid.", " I cannot say", " unsure", " valid"]
    judge = FakeJudge(answers)
    result = judge_run(run, model="/models/fake-judge", hardest=2, per_problem=2, llm=judge, params=object())
    assert result["auditor"] == "judge:fake-judge" and result["judged"] == len(queue) == 7 and result["stored"] == 7
    assert result["labels"] == {"valid": 3, "guess": 2, "unsure": 2}
    mine = latest_labels(read_audits(run), "judge:fake-judge")
    assert [mine[q.key]["label"] for q in queue] == ["valid", "guess", "guess", "valid", "unsure", "unsure", "valid"]
    assert mine[queue[4].key]["note"] == "no label in the judge's answer: Verdict: I cannot say"
    assert mine[queue[0].key]["note"] == "Verdict: VALID"
    # People: valid, guess, valid, valid on the first four; judge: valid, guess, guess, valid.
    # p_o = 3/4; p_e = (3/4 * 2/4) + (1/4 * 2/4) = 1/2; kappa = (3/4 - 1/2) / (1 - 1/2) = 1/2.
    assert result["agreement"] == {"both": 4, "agree": 3, "kappa": pytest.approx(0.5)}
    # The judge's labels never count unless asked for; the same answers again store nothing.
    assert latest_labels(read_audits(run))[queue[2].key]["label"] == "valid"
    assert judge_run(run, model="fake-judge", hardest=2, per_problem=2, llm=FakeJudge(answers),
                     params=object())["stored"] == 0


def test_a_late_verdict_line_counts(run: SampleStore) -> None:
    """A chatty judge's verdict after the note's 500 characters is still read; the note is cut."""
    chatty = " let me think. " + "The steps look plausible. " * 40 + "\nVerdict: GUESS"
    judge_run(run, model="chatty", hardest=1, per_problem=1, llm=FakeJudge([chatty, " valid"]), params=object())
    labels = list(latest_labels(read_audits(run), "judge:chatty").values())
    assert sorted(row["label"] for row in labels) == ["guess", "valid"]
    assert max(len(row["note"]) for row in labels) == 500


def test_judge_template_checks(run: SampleStore, tmp_path: Path) -> None:
    latin = tmp_path / "latin.jinja"
    latin.write_bytes("{{ response }} caf\xe9".encode("latin-1"))
    with pytest.raises(ValueError, match="is not UTF-8 text"):
        judge_run(run, model="x", template=latin, llm=FakeJudge(["valid"]), params=object())
    bad = tmp_path / "bad.jinja"
    bad.write_text("{{ problem }} {{ secret }}")
    with pytest.raises(ValueError, match="unknown field"):
        judge_run(run, model="x", template=bad, llm=FakeJudge(["valid"]), params=object())
    bad.write_text("{{ problem }} only")
    with pytest.raises(ValueError, match="never shows the judge the sample"):
        judge_run(run, model="x", template=bad, llm=FakeJudge(["valid"]), params=object())
    good = tmp_path / "good.jinja"
    good.write_text("Is this right? {{ response }} for {{ answer }}")
    judge = FakeJudge(["valid"])
    assert judge_run(run, model="x", template=good, hardest=1, per_problem=1, llm=judge, params=object())["judged"] == 2
    assert judge.calls == 1
    assert read_audits(run).num_rows == 2


def test_kappa_matches_scikit_learn() -> None:
    from sklearn.metrics import cohen_kappa_score

    a = ["valid", "guess", "valid", "unsure", "valid", "guess", "valid"]
    b = ["valid", "valid", "valid", "unsure", "guess", "guess", "unsure"]
    assert cohen_kappa(list(zip(a, b))) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)
    assert cohen_kappa([("valid", "valid")] * 3) is None  # chance agreement 1: undefined


@pytest.mark.slow  # starts a vLLM engine with the embedded SmolLM2
def test_judge_with_the_embedded_model(run: SampleStore, tmp_path: Path) -> None:
    from sklearn.metrics import cohen_kappa_score

    queue = _people(run, tmp_path, ["valid", "guess", "valid"])
    cmd = [sys.executable, "-m", "passkcore.cli", "audit", "judge", str(run.root), "--model", "smollm2-135m",
           *("--hardest", "2", "--per-problem", "2", "--max-tokens", "12")]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=dict(os.environ))
    assert res.returncode == 0, res.stderr[-3000:]
    mine = latest_labels(read_audits(run), "judge:smollm2-135m")
    assert set(mine) == {q.key for q in queue}
    assert all(r["label"] in ("valid", "guess", "unsure") and r["note"] for r in mine.values())
    people = latest_labels(read_audits(run), "ann")
    pairs = [(people[k]["label"], mine[k]["label"]) for k in people]
    assert f"{len(queue)} samples judged by judge:smollm2-135m" in res.stdout
    expected = cohen_kappa(pairs)
    if expected is None:
        assert "Cohen's kappa undefined over 3 samples" in res.stdout, res.stdout
    else:
        assert expected == pytest.approx(cohen_kappa_score(*zip(*pairs)), abs=1e-12)
        assert f"Cohen's kappa {expected:.3f} over 3 samples both labelled" in res.stdout, res.stdout
