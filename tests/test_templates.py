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
