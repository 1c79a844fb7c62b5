"""``passk audit judge``: an LLM's first pass over the audit queue, stored under ``judge:<model>``.

The judge is a vLLM engine built as ``passk sample`` builds its own (``passkcore.sampling.make_llm``),
asked, greedily, whether each queued sample's reasoning supports its (correct) answer. Its prompt is a
Jinja template over ``problem``, ``answer`` (the reference), ``response``, ``extracted_answer``,
``problem_id`` and ``model``, sent as one user message through the judge's chat template where it has
one. The judge sees text only: a problem's images are not sent.

The judge's answer starts after ``Verdict:``, written at the end of the prompt. It becomes a label: a
``verdict:`` (or ``label:``/``answer:``) line naming one of the three labels, else the answer's first word, else the one label it mentions; an answer naming none, or
several without a verdict line, is ``unsure`` with the answer kept in the note. A prompt longer than
the judge's context is ``unsure`` without asking. Labels go into the run's ``audits/`` table like a
person's (one shard per run of the judge; unchanged labels are not stored again), and the judge's
agreement with people's labels (Cohen's kappa) is computed on the samples both labelled.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional, Union

from passkcore.audit.numbers import agreement
from passkcore.audit.queue import (
    DEFAULT_HARDEST,
    DEFAULT_PER_PROBLEM,
    QueueItem,
    audit_queue,
    check_positive,
    problems_of,
    sample_details,
)
from passkcore.audit.store import (
    JUDGE_PREFIX,
    LABELS,
    Label,
    label_counts,
    latest_labels,
    opened,
    read_audits,
    store_labels,
)
from passkcore.pipeline.store import SampleStore

DEFAULT_TEMPLATE = """You are checking a solution whose final answer is correct. Decide whether its reasoning \
actually supports that answer, or whether the answer looks like a lucky guess.

Problem:
{{ problem }}

Reference answer: {{ answer }}

Solution:
{{ response }}

Reply VALID if the reasoning leads to the answer, GUESS if the reasoning does not support the answer, \
UNSURE if you cannot tell. Reply with one word: VALID, GUESS or UNSURE."""
FIELDS = ("problem", "answer", "response", "extracted_answer", "problem_id", "model")
NOTE_CHARS = 500  # of the judge's answer kept in the note
# Written after the prompt, as the start of the judge's answer, so that its first words are the verdict
# (the embedded SmolLM2-135M, too small to judge, then writes the problem's answer instead of its system
# message: unsure either way, 7 of 7 samples).
ANSWER_PREFIX = "Verdict:"
_VERDICT_LINE = re.compile(r"(?:verdict|label|answer)\s*[:=\-]\s*[*_`\"']*\s*(valid|guess|unsure)\b", re.I)
_WORD = re.compile(r"\b(valid|guess|unsure)\b", re.I)


def load_template(template: Union[str, Path, None]) -> str:
    """The judge's template text: the default, or a Jinja file that parses, uses only FIELDS and shows
    the judge the response."""
    if template is None:
        return DEFAULT_TEMPLATE
    path = Path(template)
    if not path.is_file():
        raise ValueError(f"--template: {str(template)!r} is not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"--template: {str(template)!r} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    from jinja2 import TemplateSyntaxError, meta
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    try:
        names = meta.find_undeclared_variables(ImmutableSandboxedEnvironment().parse(text))
    except TemplateSyntaxError as exc:
        raise ValueError(f"{path}:{exc.lineno}: not a valid Jinja template ({exc.message})") from None
    unknown = sorted(names - set(FIELDS))
    if unknown:
        raise ValueError(f"{path}: unknown field(s) {', '.join(unknown)}; a judge template may use {', '.join(FIELDS)}")
    if "response" not in names:
        raise ValueError(f"{path}: the template never shows the judge the sample ({{{{ response }}}})")
    return text


def compile_template(template: str) -> Any:
    """The judge's template compiled once, in Jinja's sandbox (model text is rendered into it)."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(keep_trailing_newline=True, undefined=StrictUndefined).from_string(template)


def parse_verdict(text: str) -> Optional[str]:
    """The label a judge's answer gives (see the module's notes), or None."""
    lines = _VERDICT_LINE.findall(text)
    if lines:
        return lines[-1].lower()
    words = re.findall(r"[A-Za-z]+", text)
    if words and words[0].lower() in LABELS:
        return words[0].lower()
    named = {w.lower() for w in _WORD.findall(text)}
    return named.pop() if len(named) == 1 else None


def prompt_ids(tokenizer: Any, text: str) -> list[int]:
    """The judge's prompt ids: one user message through its chat template (or the text itself), then
    ANSWER_PREFIX, so the judge's first words are its verdict."""
    if getattr(tokenizer, "chat_template", None):
        chat = tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                             tokenize=False)
        return [int(t) for t in tokenizer.encode(chat + ANSWER_PREFIX, add_special_tokens=False)]
    return [int(t) for t in tokenizer.encode(f"{text}\n{ANSWER_PREFIX}", add_special_tokens=True)]


def judge_prompts(store: SampleStore, queue: Sequence[QueueItem], template: str) -> list[str]:
    """The rendered prompt of each queued sample."""
    problems = {p.id: p for p in problems_of(store)}
    details = sample_details(store, queue)
    compiled = compile_template(template)
    out = []
    for item in queue:
        problem = problems.get(item.problem_id)
        detail = details.get(item.key, {})
        fields = {"problem": problem.prompt if problem else "", "answer": (problem.answer or "") if problem else "",
                  "response": detail.get("response") or "", "extracted_answer": detail.get("extracted_answer") or "",
                  "problem_id": item.problem_id, "model": item.model}
        out.append(compiled.render(**fields))
    return out


def greedy(max_tokens: int) -> Any:
    from vllm import SamplingParams

    return SamplingParams(temperature=0.0, max_tokens=max_tokens, seed=0)


def ask(llm: Any, prompts: Sequence[str], max_tokens: int, context: int, params: Any = None) -> list[Optional[str]]:
    """The judge's greedy answer to each prompt; None where the prompt leaves no room to answer."""
    tokenizer = llm.get_tokenizer()
    ids = [prompt_ids(tokenizer, text) for text in prompts]
    fits = [i for i, x in enumerate(ids) if len(x) + max_tokens <= context]
    params = greedy(max_tokens) if params is None else params
    outputs = llm.generate([{"prompt_token_ids": ids[i]} for i in fits], params, use_tqdm=False) if fits else []
    answers: list[Optional[str]] = [None] * len(prompts)
    for i, out in zip(fits, outputs):
        answers[i] = out.outputs[0].text
    return answers


def to_label(item: QueueItem, answer: Optional[str], context: int) -> Label:
    if answer is None:
        return Label(*item.key, "unsure", f"not asked: the prompt leaves no room to answer in {context} tokens")
    full = (ANSWER_PREFIX + answer).strip()
    label = parse_verdict(full)  # the whole answer: a chatty judge's verdict line may come late
    said = full[:NOTE_CHARS]
    if label is None:
        return Label(*item.key, "unsure", f"no label in the judge's answer: {said}")
    return Label(*item.key, label, said)


def judge_run(run: Union[str, Path, SampleStore], *, model: str, template: Union[str, Path, None] = None,
              hardest: int = DEFAULT_HARDEST, per_problem: int = DEFAULT_PER_PROBLEM,
              models: Optional[Sequence[str]] = None, seed: int = 0, dtype: str = "auto", max_tokens: int = 256,
              max_model_len: int = 4096, llm: Any = None, params: Any = None) -> dict[str, Any]:
    """Judges the audit queue with ``model`` (an engine ``llm`` handed in is used as it is, with
    ``params``, default greedy vLLM ``SamplingParams``) and stores its labels under ``judge:<model
    name>``; returns the auditor, counts and agreement with people."""
    from passkcore.sampling import check_dtype, make_llm, shutdown_engine

    check_positive(max_tokens, "--max-tokens")
    check_dtype(dtype, "--dtype")
    if isinstance(max_model_len, bool) or not isinstance(max_model_len, int) or max_model_len <= max_tokens:
        raise ValueError(f"--max-model-len must be an integer above --max-tokens ({max_tokens}), got {max_model_len!r}")
    text = load_template(template)
    store = opened(run)
    auditor = JUDGE_PREFIX + Path(model).name
    queue = audit_queue(store, hardest=hardest, per_problem=per_problem, models=models, seed=seed)
    prompts = judge_prompts(store, queue, text)
    own = llm is None and bool(queue)
    engine = make_llm(model, dtype=dtype, max_model_len=max_model_len, seed=seed) if own else llm
    try:
        answers = ask(engine, prompts, max_tokens, max_model_len, params) if queue else []
    finally:
        if own:
            shutdown_engine(engine)
    labels = [to_label(item, answer, max_model_len) for item, answer in zip(queue, answers)]
    stored = store_labels(store, labels, auditor)
    audits = read_audits(store)
    mine = latest_labels(audits, auditor)
    return {"auditor": auditor, "judged": len(labels), "stored": stored,
            "labels": label_counts({lab.key: {"label": lab.label} for lab in labels}),
            "agreement": agreement(mine, latest_labels(audits))}
