"""Multiple-choice and numeric answers, judged as MathVista and MathVision judge them.

- Multiple choice (a problem with ``choices``): the answer taken from the response (the last
  ``\\boxed{}``, else the last line) is right when it names the right option by its letter (``B``,
  ``(B)``, ``B.``) or by its text. The reference is the option's text (MathVista) or its letter
  (MathVision, whose options are lettered A, B, ...).
- ``answer_type`` ``integer``: the answer read as a number must equal the reference integer;
  ``float``: both rounded to the problem's ``precision`` decimals must be equal (MathVista's
  ``precision`` field; 2 when absent).
Other answers go to math-verify (``passkcore.verify.math``).
"""

from __future__ import annotations

import re
from typing import Optional

from passkcore.problems import Problem, choice_letter
from passkcore.verify.math import answer_key
from passkcore.verify.verdict import Verdict

VERIFIER = "choice"
NUMBER_VERIFIER = "number"
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def response_answer(response: str) -> Optional[str]:
    """The last ``\\boxed{}`` content, else the last non-empty line; None for an empty response."""
    from passkcore.problem_files import last_boxed

    boxed = last_boxed(response)
    if boxed is not None:
        return boxed.strip()
    lines = [line.strip() for line in response.strip().splitlines() if line.strip()]
    return lines[-1] if lines else None


def _norm(text: str) -> str:
    text = re.sub(r"\\text\{([^{}]*)\}", r"\1", text)
    return re.sub(r"\s+", " ", text.strip().strip("$").strip()).rstrip(".").lower()


def gold_option(problem: Problem) -> int:
    """The index of the right option: the option equal to the answer, else the answer as a letter."""
    choices, answer = problem.choices or [], str(problem.answer or "")
    texts = [_norm(c) for c in choices]
    if _norm(answer) in texts:
        return texts.index(_norm(answer))
    letter = answer.strip().strip("()").strip().upper()
    if len(letter) == 1 and 0 <= ord(letter) - ord("A") < len(choices):
        return ord(letter) - ord("A")
    raise ValueError(f"problem {problem.id!r}: answer {answer!r} is neither an option nor an option's letter")


def chosen_option(answer: str, choices: list[str]) -> Optional[int]:
    """The option an extracted answer names: by letter (``B``, ``(B)``, ``B.``, ``(B) text``) or text."""
    text = answer.strip()
    match = re.fullmatch(r"\(?([A-Za-z])\)?[.:]?(?:\s+.*)?", text, flags=re.S)
    if match and (len(text) <= 3 or text.startswith("(")):
        k = ord(match.group(1).upper()) - ord("A")
        if 0 <= k < len(choices):
            return k
    texts = [_norm(c) for c in choices]
    return texts.index(_norm(text)) if _norm(text) in texts else None


def check_choice(response: str, problem: Problem) -> Verdict:
    """The verdict of a multiple-choice response."""
    choices = problem.choices or []
    gold = gold_option(problem)
    answer = response_answer(response)
    if answer is None:
        return Verdict(False, "no_answer", None, VERIFIER)
    picked = chosen_option(answer, choices)
    if picked is None:
        return Verdict(False, "wrong_answer", answer, VERIFIER, answer_key=answer_key(answer))
    ok = picked == gold
    return Verdict(ok, "passed" if ok else "wrong_answer", answer, VERIFIER, answer_key=choice_letter(picked))


def read_number(text: str) -> Optional[float]:
    """The last number in a text (thousands commas dropped), or None."""
    found = _NUMBER.findall(text)
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def check_number(response: str, problem: Problem) -> Verdict:
    """The verdict of an ``integer`` or ``float`` answer (``precision`` decimals, default 2)."""
    gold = read_number(str(problem.answer))
    if gold is None:
        raise ValueError(f"problem {problem.id!r}: answer {problem.answer!r} is not a number ({problem.answer_type})")
    answer = response_answer(response)
    value = read_number(answer) if answer is not None else None
    if value is None:
        return Verdict(False, "no_answer", answer, NUMBER_VERIFIER)
    if problem.answer_type == "integer":
        ok = value == round(value) and int(round(value)) == int(round(gold))
        key = str(int(value)) if value == round(value) else repr(value)
    else:
        digits = 2 if problem.precision is None else problem.precision
        ok = round(value, digits) == round(gold, digits)
        key = f"{round(value, digits):.{digits}f}"
    return Verdict(ok, "passed" if ok else "wrong_answer", answer, NUMBER_VERIFIER, answer_key=key)


def local_verdict(response: str, problem: Problem) -> Optional[Verdict]:
    """The verdict of a multiple-choice or numeric problem; None for an answer math-verify judges."""
    if problem.choices:
        return check_choice(response, problem)
    if problem.answer_type in ("integer", "float"):
        return check_number(response, problem)
    return None
