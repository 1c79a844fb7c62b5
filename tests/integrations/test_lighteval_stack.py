"""End to end: lighteval's own Pipeline (transformers backend, CPU) on the embedded SmolLM2 with a custom
task whose metrics are passkcore's; `task@k=2@n=4` on the task spec; its results against the details
file's responses judged by passkcore and scored with the core."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import passkcore
from passkcore.models import resolve_model
from passkcore.verify import check_math

RUN = Path(__file__).with_name("lighteval_run") / "run.py"
QUESTIONS = [("What is 2 + 3?", "5"), ("What is 10 - 4?", "6"), ("What is 3 times 3?", "9"), ("What is 7 + 1?", "8")]


@pytest.mark.slow
def test_lighteval_pipeline_with_passkcore_metrics(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "test.jsonl").write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in QUESTIONS))
    env = {**os.environ, "PASSK_E2E_DATA": str(data), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, str(RUN), str(resolve_model("smollm2-135m")), str(out), "passk_e2e@k=2@n=4|0"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    line = next(x for x in run.stdout.splitlines() if x.startswith("PASSK-RESULTS "))
    results = json.loads(line.removeprefix("PASSK-RESULTS "))["passk_e2e:0"]
    # task@k=2 replaced every passkcore metric's k (the task built them with k=[1, 2], [1, 4], [2, 4]).
    assert {name for name in results if not name.endswith("_stderr")} == {
        "pass@2", "maj@2", "g-pass@2_0.5", "g-pass@2_1.0", "mg-pass@2"}
    details = pq.read_table(next(out.rglob("details_*.parquet"))).to_pylist()
    assert len(details) == len(QUESTIONS)
    c = []
    for row in details:
        texts = row["model_response"]["text_post_processed"] or row["model_response"]["text"]
        assert len(texts) == 4  # n=4 samples per document
        gold = row["doc"]["choices"][row["doc"]["gold_index"]]
        c.append(sum(check_math(t, gold).passed for t in texts))
    assert results["pass@2"] == pytest.approx(float(np.mean(passkcore.pass_at_k(4, c, 2))), abs=1e-12)
    assert results["g-pass@2_0.5"] == pytest.approx(float(np.mean(passkcore.g_pass_at_k(4, c, 2, 0.5))), abs=1e-12)
    assert results["mg-pass@2"] == pytest.approx(float(np.mean(passkcore.mg_pass_at_k(4, c, 2))), abs=1e-12)
    assert results["pass@2_stderr"] == pytest.approx(float(np.std(passkcore.pass_at_k(4, c, 2), ddof=1) / 2), rel=1e-9)
