"""End to end: lm-evaluation-harness itself, hf backend on the embedded SmolLM2 (CPU), a task that
includes passkcore's shipped template with repeats 4; its results file against `passk estimate` on the
same responses judged by passkcore."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from passkcore.integrations.lm_eval import tasks_dir
from passkcore.models import resolve_model
from passkcore.verify import check_math

QUESTIONS = [("What is 2 + 3?", "5"), ("What is 10 - 4?", "6"), ("What is 3 times 3?", "9"),
             ("What is 7 + 1?", "8"), ("What is 12 divided by 4?", "3")]


def _task(root: Path) -> str:
    data = root / "arith.jsonl"
    data.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in QUESTIONS))
    (root / "passk_e2e.yaml").write_text(f"""\
include: {tasks_dir() / "_passk_math_template"}
task: passk_e2e_arith
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: "{{{{answer}}}}"
repeats: 4
generation_kwargs:
  until: ["\\n", "Question:"]
  do_sample: true
  temperature: 1.0
  max_gen_toks: 12
metric_list:
  - metric: !function passkcore.integrations.lm_eval.pass_at_k
    aggregation: mean
    higher_is_better: true
    k: [1, 2, 4]
  - metric: !function passkcore.integrations.lm_eval.maj_at_k
    aggregation: mean
    higher_is_better: true
    k: [1, 4]
""")
    return "passk_e2e_arith"


@pytest.mark.slow
def test_lm_eval_run_matches_passk_estimate(tmp_path: Path) -> None:
    model = resolve_model("smollm2-135m")
    task = _task(tmp_path)
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={model},dtype=float32",
           "--device", "cpu", "--batch_size", "4", "--include_path", str(tmp_path), "--tasks", task,
           "--output_path", str(out), "--log_samples", "--seed", "0"]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    results = json.loads(next(out.rglob("results_*.json")).read_text())["results"][task]
    samples = [json.loads(line) for line in next(out.rglob(f"samples_{task}_*.jsonl")).read_text().splitlines()]
    assert len(samples) == len(QUESTIONS)
    rows = []
    for s in samples:
        responses = s["filtered_resps"][0] if isinstance(s["filtered_resps"][0], list) else s["filtered_resps"]
        assert len(responses) == 4  # all repeats scored, not the first
        c = sum(check_math(r, s["target"]).passed for r in responses)
        rows.append({"problem_id": str(s["doc_id"]), "model": "smollm2", "n": 4, "c": c})
    assert 0 < sum(r["c"] for r in rows) < 4 * len(rows)  # seeded: some right, some wrong (c = 1,0,1,0,0 here)
    counts = tmp_path / "counts.csv"
    with counts.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["problem_id", "model", "n", "c"])
        writer.writeheader()
        writer.writerows(rows)
    est = subprocess.run([sys.executable, "-m", "passkcore.cli", "estimate", str(counts), "--k", "1,2,4", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert est.returncode == 0, est.stderr
    ours = json.loads(est.stdout)["models"]["smollm2"]["pass_at_k"]
    for k, value in zip((1, 2, 4), ours):
        assert results[f"pass@{k},all-responses"] == pytest.approx(value, abs=1e-12)
        assert results[f"pass@{k}_stderr,all-responses"] != "N/A"  # aggregation: mean keeps lm-eval's stderr
    # maj@1 is the chance that one drawn response is correct: pass@1, whatever the vote.
    assert results["maj@1,all-responses"] == pytest.approx(results["pass@1,all-responses"], abs=1e-12)
    assert 0.0 <= results["maj@4,all-responses"] <= results["pass@4,all-responses"] + 1e-12
