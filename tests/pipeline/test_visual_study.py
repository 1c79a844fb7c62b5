"""A visual-reasoning study end to end on a tiny local VLM (tests/tiny_vlm.py: Idefics3, random weights):
`passk sample --model DIR` on MathVista-layout problems with PIL images -> verify -> score -> report,
resumed with unchanged and with changed images, and the scores against an fp32 transformers forward."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from passkcore.images import images_digest, open_images
from passkcore.pipeline import commands
from passkcore.pipeline.store import SampleStore
from tests.conftest import make_image

pytestmark = pytest.mark.slow
RED, GREEN, BLUE = (200, 30, 30), (30, 200, 30), (30, 30, 200)


def passk(*args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys\nfrom passkcore.cli import main\nif __name__ == '__main__':\n    sys.exit(main(sys.argv[1:]))\n"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600)


def write_problems(folder: Path) -> Path:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for name, color in (("1.png", RED), ("2.png", GREEN), ("3.png", BLUE)):
        (folder / "images" / name).write_bytes(make_image(color))
    rows = [
        {"pid": "1", "question": "Which angle?", "image": "images/1.png", "choices": ["A", "B"], "answer": "B",
         "answer_type": "text", "precision": None},
        {"pid": "2", "question": "How many?", "image": "images/2.png", "choices": None, "answer": "3",
         "answer_type": "integer", "precision": None},
        {"pid": "3", "question": "What is x?", "image": "images/3.png", "choices": None, "answer": "1.5",
         "answer_type": "float", "precision": 1.0},
    ]
    path = folder / "testmini.json"
    path.write_text(json.dumps(rows))
    return path


@pytest.fixture(scope="module")
def study(tiny_vlm: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("vista")
    spec = f"mathvista:{write_problems(folder)}"
    run = folder / "run"
    args = ["sample", "--model", str(tiny_vlm), "--problems", spec, "--n", "4", "--chunk", "2", "--max-tokens", "6",
            "--temperature", "1.0", "--out", str(run), "--label", "vlm"]
    done = passk(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    template = folder / "plain.jinja"
    template.write_text("Question: {{ prompt }}\nAnswer:")
    done = passk(*args[:-2], "--label", "vlm-plain", "--template", str(template))
    assert done.returncode == 0, done.stderr[-3000:]
    return {"run": run, "spec": spec, "folder": folder, "args": args, "model": tiny_vlm}


def test_samples_carry_expanded_image_prompts_and_digests(study: dict[str, Any]) -> None:
    from transformers import AutoTokenizer

    store = SampleStore(study["run"])
    problems = {p.id: p for p in store.problems()}
    table = store.samples(columns=["model", "problem_id", "sample_index", "prompt_token_ids", "image_digest"])
    rows = table.to_pylist()
    assert sorted((r["model"], r["problem_id"]) for r in rows if r["sample_index"] == 0) == [
        (m, p) for m in ("vlm", "vlm-plain") for p in ("1", "2", "3")]
    assert sum(r["model"] == "vlm" for r in rows) == sum(r["model"] == "vlm-plain" for r in rows) == 12
    config = json.loads((study["model"] / "config.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(study["model"])
    for r in rows:
        assert r["image_digest"] == images_digest(problems[r["problem_id"]].images)
        # vLLM expanded the one <image> placeholder into the image's 4 tokens (56x56, patch 14, shuffle 2)
        assert r["prompt_token_ids"].count(config["image_token_id"]) == 4
        text = tokenizer.decode(r["prompt_token_ids"])
        if r["model"] == "vlm":  # the model's chat template placed the image before the text
            assert text.startswith("<|im_start|>User:<fake_token_around_image><global-img><image>")
            assert text.endswith("<end_of_utterance>\nAssistant:")
        else:  # a plain template: the placeholder written before the prompt
            assert text.startswith("<fake_token_around_image><global-img><image>") and "Question: " in text
    assert len({r["image_digest"] for r in rows}) == 3


def test_verify_score_and_report(study: dict[str, Any], tmp_path: Path) -> None:
    from passkcore.report import write_report

    store, _ = commands.verify(study["run"], workers=1)
    counts = store.counts().to_pylist()
    assert sorted((c["model"], c["problem_id"], c["n"]) for c in counts) == [
        (m, p, 4) for m in ("vlm", "vlm-plain") for p in ("1", "2", "3")]
    verdicts = store.samples(columns=["problem_id", "verifier"]).to_pylist()
    assert {(v["problem_id"], v["verifier"]) for v in verdicts} == {("1", "choice"), ("2", "number"), ("3", "number")}
    store, labels, stats = commands.score(study["run"], scorer=str(study["model"]), backend="fused")
    scores = store.scores(labels).to_pylist()
    assert len(scores) == 24 and {s["status"] for s in scores} == {"ok"}
    assert all(np.isfinite(s["ppl"]) and s["ppl"] > 1 for s in scores)
    html, data = write_report(study["run"], tmp_path / "report", base="vlm", resamples=20, forecast_resamples=5)
    assert html.is_file() and "vlm-plain" in data.read_text()


def test_scores_match_an_fp32_transformers_forward(study: dict[str, Any]) -> None:
    """Per-token log-probs of the VLM scorer (fused head, no [T, V] logits) against the reference:
    full fp32 logits of the same model and images, log_softmax, gather."""
    import torch
    from transformers import AutoImageProcessor, AutoModelForImageTextToText

    from passkcore.scoring import Scorer

    store = SampleStore(study["run"])
    problems = {p.id: p for p in store.problems()}
    rows = store.samples(["vlm"], columns=["problem_id", "sample_index", "prompt_token_ids",
                                           "response_token_ids"]).to_pylist()
    pairs = [(r["prompt_token_ids"], r["response_token_ids"]) for r in rows]
    images = [problems[r["problem_id"]].images for r in rows]
    scorer = Scorer(study["model"], backend="fused")
    got = scorer.visual().token_scores_at(pairs, images, [1.0])[0]
    model = AutoModelForImageTextToText.from_pretrained(study["model"], dtype=torch.float32).eval()
    processor = AutoImageProcessor.from_pretrained(study["model"])
    worst = 0.0
    with torch.inference_mode():
        for (prompt, response), locators, (logp, _) in zip(pairs, images, got):
            pixels = processor(open_images(locators), return_tensors="pt")
            logits = model(input_ids=torch.tensor([prompt + response]), **pixels).logits[0].double()
            ref = torch.log_softmax(logits, -1)[len(prompt) - 1:-1].gather(1, torch.tensor(response)[:, None])[:, 0]
            worst = max(worst, float(np.abs(logp - ref.numpy()).max()))
    assert worst <= 1e-4, worst
    stored = {(s["problem_id"], s["sample_index"]): s["sum_logprob"]
              for s in store.scores([scorer.label]).to_pylist() if s["model"] == "vlm"}
    for r, (logp, _) in zip(rows, got):
        assert stored[(r["problem_id"], r["sample_index"])] == pytest.approx(float(np.sum(logp, dtype=np.float64)),
                                                                             abs=1e-4)


def test_a_base_vlm_scores_another_vlms_samples(study: dict[str, Any],
                                                 tmp_path_factory: pytest.TempPathFactory) -> None:
    """Cross-model scoring, PPL_base(Y | x, images): a second checkpoint with the same processor and
    other weights scores the first one's samples; each sum against that checkpoint's fp32 forward."""
    import torch
    from transformers import AutoImageProcessor, AutoModelForImageTextToText

    from tests.tiny_vlm import build_tiny_vlm

    base = build_tiny_vlm(tmp_path_factory.mktemp("base") / "base-vlm", seed=1)
    store, labels, _ = commands.score(study["run"], scorer=str(base), backend="fused")
    assert labels == ["base-vlm"]
    scores = {(s["model"], s["problem_id"], s["sample_index"]): s for s in store.scores(labels).to_pylist()}
    assert len(scores) == 24 and {s["status"] for s in scores.values()} == {"ok"}
    problems = {p.id: p for p in store.problems()}
    rows = store.samples(["vlm"], columns=["problem_id", "sample_index", "prompt_token_ids",
                                           "response_token_ids"]).to_pylist()[:4]
    model = AutoModelForImageTextToText.from_pretrained(base, dtype=torch.float32).eval()
    processor = AutoImageProcessor.from_pretrained(base)
    with torch.inference_mode():
        for r in rows:
            prompt, response = r["prompt_token_ids"], r["response_token_ids"]
            pixels = processor(open_images(problems[r["problem_id"]].images), return_tensors="pt")
            logits = model(input_ids=torch.tensor([prompt + response]), **pixels).logits[0].double()
            ref = torch.log_softmax(logits, -1)[len(prompt) - 1:-1].gather(1, torch.tensor(response)[:, None]).sum()
            assert scores[("vlm", r["problem_id"], r["sample_index"])]["sum_logprob"] == pytest.approx(float(ref),
                                                                                                        abs=1e-3)


def test_resume_with_unchanged_then_changed_images(study: dict[str, Any]) -> None:
    again, stats = commands.sample(study["run"], model=str(study["model"]), problems=study["spec"], n=4, label="vlm",
                                   sampling=commands.SamplingConfig(temperature=1.0, max_tokens=6, chunk=2))
    assert stats.items == 0  # every sample is stored, drawn on these images: nothing to do, no engine
    (study["folder"] / "images" / "2.png").write_bytes(make_image(RED))
    done = passk(*study["args"])
    assert done.returncode != 0
    assert "images of problem '2' changed" in done.stderr
    assert sum(1 for _ in SampleStore(study["run"]).samples(["vlm"], columns=["problem_id"]).to_pylist()) == 12
