"""Prompt templates: how a problem becomes the token ids a model is sampled (and scored) on.

A study evaluates each model with the zero-shot prompt its RL training used (the RLVR paper; texts in
``research/prompts.md``), so the template is a per-model-label setting kept in the run's manifest:

- ``chat``: the tokenizer's own chat template around passkcore's instruction (``Problem.user_message``);
- ``raw``: the problem's prompt as plain text, no chat template (base models without one);
- ``qwen-boxed``, ``deepseek-math``, ``abel``: the math-evaluation prompts of SimpleRL-Zoo and the paper;
- a file: a Jinja template over the problem's fields (``id``, ``prompt``, ``kind``, ``answer``,
  ``entry_point``, ... and ``user_message``), rendered and tokenized as plain text.

Problems with images: the ``chat`` template sends one user message of image parts, then the text, and
the model's chat template writes its image tokens where the parts are. The other templates get
``image_tokens``, the model's placeholder text per image (what its chat template writes for an image
part), written before the prompt when a template does not place it itself. vLLM expands each
placeholder to the image's tokens; the sample rows keep the expanded prompt.

Plain-text prompts are tokenized like vLLM tokenizes a text prompt (``add_special_tokens=True``, special
markers such as ``<|im_start|>`` parsed as the special tokens they name), so the ids match what the
paper's evaluation sampled on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from passkcore.problems import Problem

# Texts of PROMPT_TEMPLATES in the math evaluation code shared by SimpleRL-Zoo and the RLVR paper; its
# Python-format ``{input}`` is ``{{ prompt }}`` here and its ``\\boxed{{}}`` a literal ``\boxed{}``.
BUILTIN_TEMPLATES: dict[str, str] = {
    "raw": "{{ prompt }}",
    "qwen-boxed": (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n{{ prompt }}\nPlease reason step by step, and put your final answer within "
        "\\boxed{}.<|im_end|>\n<|im_start|>assistant\n"
    ),
    "deepseek-math": ("User: {{ prompt }}\nPlease reason step by step, and put your final answer within "
                      "\\boxed{}.\n\nAssistant:"),
    "abel": "Question:\n{{ prompt }}\nAnswer:\nLet's think step by step.\n",
}
CHAT = "chat"
TEMPLATE_NAMES = (CHAT, *BUILTIN_TEMPLATES)


@dataclass(frozen=True)
class PromptTemplate:
    """A named prompt template. ``chat`` templates wrap the rendered text in the tokenizer's chat
    template as one user message; the others are the prompt text itself."""

    name: str
    text: str
    chat: bool = False

    def render(self, problem: Problem, image_tokens: str = "") -> str:
        """The prompt text for one problem (for ``chat``: the user message)."""
        if self.chat:
            return problem.user_message()
        from jinja2 import StrictUndefined, TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        # keep_trailing_newline: Jinja drops a template's final newline by default, and qwen-boxed's
        # prompt ends in one ("<|im_start|>assistant\n").
        env = ImmutableSandboxedEnvironment(keep_trailing_newline=True, undefined=StrictUndefined)
        fields = {**dataclasses.asdict(problem), "user_message": problem.user_message(), "image_tokens": image_tokens}
        try:
            text = env.from_string(self.text).render(**fields)
            return text if "image_tokens" in self.text else image_tokens + text
        except TemplateError as exc:
            raise ValueError(f"template {self.name!r} on problem {problem.id!r}: {exc}") from None

    def token_ids(self, tokenizer: Any, problem: Problem) -> list[int]:
        """The prompt token ids the sampler conditions on (and the scorer scores after)."""
        if self.chat:
            if not getattr(tokenizer, "chat_template", None):
                raise ValueError(f"the tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no chat template "
                                 "(a base model?): use --template raw, a built-in prompt such as qwen-boxed, or a "
                                 "template file")
            content: Any = self.render(problem)
            if problem.images:
                content = [*({"type": "image"} for _ in problem.images), {"type": "text", "text": content}]
            text = tokenizer.apply_chat_template([{"role": "user", "content": content}],
                                                 add_generation_prompt=True, tokenize=False)
            # The chat template already wrote BOS where the model wants one.
            return [int(t) for t in tokenizer.encode(text, add_special_tokens=False)]
        tokens = image_placeholder(tokenizer) * len(problem.images) if problem.images else ""
        return [int(t) for t in tokenizer.encode(self.render(problem, tokens), add_special_tokens=True)]

    def settings(self) -> dict[str, Any]:
        """What the run manifest keeps with the model label's settings."""
        return {"template": self.name, "template_text": None if self.chat else self.text}


def image_placeholder(tokenizer: Any) -> str:
    """What the model's chat template writes for one image part (``<image>``, Qwen2-VL's
    ``<|vision_start|><|image_pad|><|vision_end|>``, ...): the text between two marker texts."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("problems with images need the model's image placeholder, read from its chat template; "
                         f"the tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has none")
    a, b = "\x01passkcore-a\x01", "\x01passkcore-b\x01"
    content = [{"type": "text", "text": a}, {"type": "image"}, {"type": "text", "text": b}]
    text = tokenizer.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=False,
                                         tokenize=False)
    if a not in text or b not in text or text.index(a) > text.index(b):
        raise ValueError("the model's chat template does not render image parts between text parts")
    placeholder = text[text.index(a) + len(a):text.index(b)]
    if not placeholder:
        raise ValueError("the model's chat template writes nothing for an image part")
    return placeholder


def resolve_template(spec: Union[str, Path, PromptTemplate, None]) -> PromptTemplate:
    """A PromptTemplate from ``chat``, a built-in name, a Jinja file, or one already made (None: chat)."""
    if isinstance(spec, PromptTemplate):
        return spec
    if spec is None or spec == CHAT:
        return PromptTemplate(CHAT, "", chat=True)
    if not isinstance(spec, (str, Path)):
        raise TypeError(f"template must be a name or a file path, got {type(spec).__name__}")
    if str(spec) in BUILTIN_TEMPLATES:
        return PromptTemplate(str(spec), BUILTIN_TEMPLATES[str(spec)])
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"template {str(spec)!r} is neither one of {', '.join(TEMPLATE_NAMES)} nor a file")
    text = path.read_text()
    check_template_text(text, str(path))
    return PromptTemplate(str(path), text)


def check_template_text(text: str, source: str) -> None:
    """A template file must parse as Jinja and use the problem's prompt."""
    from jinja2 import TemplateSyntaxError, meta
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(keep_trailing_newline=True)
    try:
        names = meta.find_undeclared_variables(env.parse(text))
    except TemplateSyntaxError as exc:
        raise ValueError(f"{source}:{exc.lineno}: not a valid Jinja template ({exc.message})") from None
    fields = {f.name for f in dataclasses.fields(Problem)} | {"user_message", "image_tokens"}
    unknown = sorted(names - fields)
    if unknown:
        raise ValueError(f"{source}: unknown field(s) {', '.join(unknown)}; a template may use {', '.join(sorted(fields))}")
    if not names & {"prompt", "user_message"}:
        raise ValueError(f"{source}: the template never uses the problem ({{{{ prompt }}}} or {{{{ user_message }}}})")


def template_from_settings(settings: Optional[dict[str, Any]]) -> PromptTemplate:
    """The template a model label was sampled with, from its manifest settings (older runs: chat)."""
    settings = settings or {}
    name = settings.get("template", CHAT)
    if name == CHAT:
        return resolve_template(CHAT)
    text = settings.get("template_text")
    if not isinstance(text, str):
        raise ValueError(f"manifest settings name template {name!r} without its text")
    return PromptTemplate(str(name), text)
