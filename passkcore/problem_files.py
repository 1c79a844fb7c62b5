"""Benchmark files as published: JSONL, JSON and Parquet rows mapped onto Problems by field names.

A mapping names the field holding each part of a problem (``--id-field``, ``--prompt-field``,
``--answer-field``, ... or a small JSON mapping file); presets hold the layouts of the public files:

==================  ========================================  =====================================
preset              fields (first one present wins)             answer
==================  ========================================  =====================================
math500             problem; answer; id: idx or row position   ``answer``
aime24, aime25      problem/Problem/question; answer/Answer    ``answer``
amc23               problem/question; answer                   ``answer`` (27.0 stays "27.0")
gsm8k               question; answer                           after the last ``####``
minerva             problem; solution                          last ``\\boxed{}`` of the solution
olympiadbench       question; final_answer                     first element, ``$`` stripped
humaneval(+)        task_id, prompt, test, entry_point         HumanEval ``check(candidate)``
mbpp+               task_id, prompt, test, entry_point         evalplus' assertion script
livecodebench       question_id, question_content, tests       stdin or functional tests
mathvista           pid; question; decoded_image/image;        option text or letter (choices);
                    choices; answer_type; precision             integer; float to ``precision``
mathvision          id; question; decoded_image/image;         option letter (options A-E) or
                    options; answer                             the value
==================  ========================================  =====================================

Image fields (``--image-field``, ``images`` in a mapping) take a path relative to the problem file,
raw bytes (Parquet) or a base64 data URI (JSON), one or a list: ``passkcore.images``.

Math presets follow the RLVR paper's data folder (``limit-of-RLVR/math/examples/math_eval/data``) and
its ``parse_ground_truth``: a row's id is its ``idx`` field, else its 0-based position in the file, the
id the paper's result files (``passk import rlvr``) carry.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Optional, Union

from passkcore.images import field_locators
from passkcore.jsonio import jsonl_objects, read_json
from passkcore.problems import Problem, arithmetic, load_humaneval, load_jsonl

ANSWER_FORMATS = ("text", "gsm8k", "boxed", "first")


@dataclass(frozen=True)
class FieldMap:
    """Which field holds each part of a problem; a tuple lists candidates, the first present wins.
    ``id=None`` (or an absent id field) numbers rows from 0 in file order."""

    id: Union[str, tuple[str, ...], None] = "id"
    prompt: Union[str, tuple[str, ...]] = "prompt"
    answer: Union[str, tuple[str, ...], None] = "answer"
    answer_format: str = "text"
    tests: Optional[str] = "tests"
    entry_point: Optional[str] = "entry_point"
    kind: Optional[str] = None  # None: "math" when an answer is present, else "code" with tests
    strip: bool = False  # strip the prompt's surrounding white space (the RLVR paper's parse_question)
    images: Union[str, tuple[str, ...], None] = None  # image field(s): passkcore.images
    choices: Optional[str] = None  # multiple-choice options (a list; empty: free form)
    answer_type: Optional[str] = None  # "integer", "float" (with precision), anything else: text
    precision: Optional[str] = None  # decimals a float answer is judged to

    def __post_init__(self) -> None:
        if self.answer_format not in ANSWER_FORMATS:
            raise ValueError(f"answer_format must be one of {', '.join(ANSWER_FORMATS)}, got {self.answer_format!r}")


_MATH = {"id": ("idx",), "answer_format": "text", "tests": None, "entry_point": None, "kind": "math", "strip": True}
PRESETS: dict[str, FieldMap] = {
    "math500": FieldMap(prompt=("problem",), answer=("answer",), **_MATH),  # type: ignore[arg-type]
    "aime24": FieldMap(prompt=("problem", "Problem", "question"), answer=("answer", "Answer"), **_MATH),  # type: ignore[arg-type]
    "aime25": FieldMap(prompt=("problem", "Problem", "question"), answer=("answer", "Answer"), **_MATH),  # type: ignore[arg-type]
    "amc23": FieldMap(prompt=("problem", "question"), answer=("answer",), **_MATH),  # type: ignore[arg-type]
    "gsm8k": FieldMap(prompt=("question",), answer=("answer",), **{**_MATH, "answer_format": "gsm8k"}),  # type: ignore[arg-type]
    "minerva": FieldMap(prompt=("problem",), answer=("solution",), **{**_MATH, "answer_format": "boxed"}),  # type: ignore[arg-type]
    "olympiadbench": FieldMap(prompt=("question",), answer=("final_answer",), **{**_MATH, "answer_format": "first"}),  # type: ignore[arg-type]
    "humaneval": FieldMap(id="task_id", prompt="prompt", answer=None, tests="test", entry_point="entry_point", kind="code"),
    "humaneval+": FieldMap(id="task_id", prompt="prompt", answer=None, tests="test", entry_point="entry_point", kind="code"),
    "mbpp+": FieldMap(id="task_id", prompt="prompt", answer=None, tests="test", entry_point="entry_point", kind="code"),
    "livecodebench": FieldMap(id="question_id", prompt="question_content", answer=None, tests=None, entry_point=None,
                              kind="livecodebench"),
}
# MathVista testmini (AI4Math/MathVista: pid, question, image, decoded_image, choices, precision,
# answer, question_type, answer_type) and MathVision (MathLLMs/MathVision: id, question, options,
# image, decoded_image, answer); their Parquet files carry the decoded image's bytes, their JSON
# files a path relative to the file.
PRESETS["mathvista"] = FieldMap(id=("pid",), prompt=("question",), answer=("answer",), kind="math", tests=None,
                                entry_point=None, images=("decoded_image", "image"), choices="choices",
                                answer_type="answer_type", precision="precision")
PRESETS["mathvision"] = FieldMap(id=("id",), prompt=("question",), answer=("answer",), kind="math", tests=None,
                                 entry_point=None, images=("decoded_image", "image"), choices="options")
PRESETS["humanevalplus"], PRESETS["mbppplus"] = PRESETS["humaneval+"], PRESETS["mbpp+"]
MAPPING_KEYS = ("preset", *(f.name for f in fields(FieldMap)))


def field_map(preset: Optional[str] = None, mapping_file: Optional[Union[str, Path]] = None,
              **overrides: Optional[str]) -> FieldMap:
    """A FieldMap from a preset, then a JSON mapping file (``{"preset"?, "id", "prompt", "answer", ...}``),
    then single overrides (``id=..., prompt=..., answer=...``; None leaves a field as it is)."""
    fm = FieldMap()
    settings: dict[str, Any] = {}
    if mapping_file is not None:
        path = Path(mapping_file)
        try:
            settings = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"mapping file {str(path)!r}: {exc}") from None
        if not isinstance(settings, dict):
            raise ValueError(f"mapping file {str(path)!r}: expected a JSON object of field names")
        unknown = sorted(set(settings) - set(MAPPING_KEYS))
        if unknown:
            raise ValueError(f"mapping file {str(path)!r}: unknown key(s) {', '.join(unknown)}; known: "
                             f"{', '.join(MAPPING_KEYS)}")
    preset = settings.pop("preset", None) or preset
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
        fm = PRESETS[preset]
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return replace(fm, **settings) if settings else fm


def iter_records(path: Union[str, Path], batch_rows: int = 4096) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, row) for each object in a JSONL, JSON (a list, or an object of objects) or Parquet
    file; ``where`` names the file and line, entry or row for error messages. JSONL and Parquet
    stream; a JSON document is read whole."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        row = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
            for record in batch.to_pylist():
                yield f"{path}: row {row}", record
                row += 1
    elif suffix == ".json":
        data = read_json(path)
        items = list(data.items()) if isinstance(data, dict) else list(enumerate(data)) if isinstance(data, list) else None
        if items is None:
            raise ValueError(f"{path}: expected a JSON list or object of records")
        for key, record in items:
            if not isinstance(record, dict):
                raise ValueError(f"{path}: entry {key!r} is not an object")
            yield f"{path}: entry {key!r}", record
    else:
        yield from jsonl_objects(path)


def _pick(row: Mapping[str, Any], names: Union[str, tuple[str, ...], None]) -> tuple[Optional[str], Any]:
    candidates = (names,) if isinstance(names, str) else (names or ())
    for name in candidates:
        if name in row and row[name] is not None:
            return name, row[name]
    return None, None


def last_boxed(text: str) -> Optional[str]:
    """The content of the last ``\\boxed{...}`` (braces balanced), or None."""
    start = text.rfind("\\boxed")
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1:j]
    return None


def _answer(value: Any, fmt: str, where: str, name: str) -> str:
    if fmt == "gsm8k":
        if not isinstance(value, str) or "####" not in value:
            raise ValueError(f"{where}: field {name!r} has no '#### answer' line")
        return value.rsplit("####", 1)[1].strip()
    if fmt == "boxed":
        boxed = last_boxed(str(value))
        if boxed is None:
            raise ValueError(f"{where}: field {name!r} has no \\boxed{{...}} answer")
        return boxed.strip()
    if fmt == "first":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                value = [value]
        if not isinstance(value, list) or not value:
            raise ValueError(f"{where}: field {name!r} must be a non-empty list of answers")
        return str(value[0]).strip().strip("$")
    if isinstance(value, (dict, list)):
        raise ValueError(f"{where}: field {name!r} is a {type(value).__name__}, not an answer")
    return str(value)


def visual_fields(row: Mapping[str, Any], fm: FieldMap, where: str, base: Path) -> dict[str, Any]:
    """A record's images (checked: each decoded), options, answer type and precision, as Problem fields."""
    out: dict[str, Any] = {}
    name, value = _pick(row, fm.images)
    if name is not None:
        out["images"] = field_locators(value, base, f"{where}: field {name!r}")
    choices = row.get(fm.choices) if fm.choices else None
    if isinstance(choices, str):
        try:
            choices = json.loads(choices)
        except json.JSONDecodeError:
            raise ValueError(f"{where}: field {fm.choices!r} must be a list of options") from None
    if choices is not None and (not isinstance(choices, (list, tuple)) or any(isinstance(c, (dict, list)) for c in choices)):
        raise ValueError(f"{where}: field {fm.choices!r} must be a list of options, got {type(choices).__name__}")
    if choices:
        out["choices"] = [str(c) for c in choices]
    answer_type = row.get(fm.answer_type) if fm.answer_type else None
    if answer_type is not None:
        out["answer_type"] = str(answer_type)
    precision = row.get(fm.precision) if fm.precision else None
    if precision is not None:
        if isinstance(precision, bool) or not isinstance(precision, (int, float)) or precision < 0 or precision != int(precision):
            raise ValueError(f"{where}: field {fm.precision!r} must be a whole number of decimals, got {precision!r}")
        out["precision"] = int(precision)
    return out


def problem_from_record(row: Mapping[str, Any], fm: FieldMap, where: str, position: int,
                        base: Optional[Path] = None) -> Problem:
    """One Problem from one record; errors name ``where`` and the field. ``base``: the folder image
    paths are relative to (the problem file's; default the working directory)."""
    if fm.kind == "livecodebench":
        return livecodebench_problem(row, where)
    id_name, pid = _pick(row, fm.id)
    if fm.id is not None and id_name is None and not isinstance(fm.id, tuple):
        raise ValueError(f"{where}: missing id field {fm.id!r} (fields: {', '.join(sorted(row))})")
    pid = position if id_name is None else pid
    prompt_name, prompt = _pick(row, fm.prompt)
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"{where}: missing or empty prompt field {fm.prompt!r} (fields: {', '.join(sorted(row))})")
    prompt = prompt.strip() if fm.strip else prompt
    answer_name, answer = _pick(row, fm.answer)
    if fm.kind == "math" or (fm.kind is None and answer_name is not None):
        if answer_name is None:
            raise ValueError(f"{where}: missing answer field {fm.answer!r}")
        return Problem(str(pid), prompt, "math", answer=_answer(answer, fm.answer_format, where, answer_name),
                       **visual_fields(row, fm, where, base or Path.cwd()))
    tests, entry = row.get(fm.tests or ""), row.get(fm.entry_point or "")
    for name, value in ((fm.tests, tests), (fm.entry_point, entry)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{where}: missing or empty field {name!r} (needs an answer, or tests and an entry point)")
    assert isinstance(tests, str) and isinstance(entry, str)  # checked just above; for mypy
    if "def check(" not in tests:
        # evalplus' MBPP+ test is a script that calls the function by name at module level; the
        # HumanEval harness then calls check(candidate), which has nothing left to do.
        tests = f"{tests}\n\ndef check(candidate):\n    pass\n"
    return Problem(str(pid), prompt, "code", tests=tests, entry_point=entry)


class _StrOnly(pickle.Unpickler):
    """LiveCodeBench pickles its private tests as one JSON string: refuse any other object."""

    def find_class(self, module: str, name: str) -> Any:
        raise ValueError(f"refusing to unpickle {module}.{name} in LiveCodeBench private tests")


def _lcb_tests(value: Any, where: str, name: str) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{where}: field {name!r} must hold the test cases")
    try:
        return list(json.loads(value))
    except json.JSONDecodeError:
        pass
    try:
        text = _StrOnly(io.BytesIO(zlib.decompress(base64.b64decode(value.encode())))).load()
        return list(json.loads(text))
    except (ValueError, zlib.error, pickle.UnpicklingError, TypeError) as exc:
        raise ValueError(f"{where}: field {name!r} is neither JSON nor LiveCodeBench's compressed tests ({exc})") from None


def livecodebench_problem(row: Mapping[str, Any], where: str) -> Problem:
    """A LiveCodeBench code-generation row: stdin tests become ``code_stdio``; functional tests
    (``metadata.func_name``, one JSON argument per input line) become ``code_io``."""
    for name in ("question_id", "question_content", "public_test_cases"):
        if not row.get(name):
            raise ValueError(f"{where}: missing field {name!r}")
    tests = _lcb_tests(row["public_test_cases"], where, "public_test_cases")
    if row.get("private_test_cases"):
        tests += _lcb_tests(row["private_test_cases"], where, "private_test_cases")
    metadata = row.get("metadata") or {}
    metadata = json.loads(metadata) if isinstance(metadata, str) else metadata
    kinds = {t.get("testtype") for t in tests}
    prompt = str(row["question_content"])
    if row.get("starter_code"):
        prompt = f"{prompt}\n\n{row['starter_code']}"
    fields_: dict[str, Any]
    if kinds == {"functional"}:
        func = metadata.get("func_name")
        if not func:
            raise ValueError(f"{where}: functional tests without metadata.func_name")
        # LeetCode-style problems define the function as a method of class Solution (starter code).
        entry = f"Solution.{func}" if "class Solution" in str(row.get("starter_code") or "") else func
        fields_ = {"kind": "code_io", "entry_point": entry,
                   "inputs": [[json.loads(a) for a in t["input"].split("\n") if a.strip()] for t in tests],
                   "outputs": [json.loads(t["output"]) for t in tests]}
    elif kinds == {"stdin"}:
        fields_ = {"kind": "code_stdio", "inputs": [t["input"] for t in tests], "outputs": [t["output"] for t in tests]}
    else:
        raise ValueError(f"{where}: test types {sorted(map(str, kinds))} (expected all 'stdin' or all 'functional')")
    return Problem(id=str(row["question_id"]), prompt=prompt, **fields_)


def load_problem_file(path: Union[str, Path], fm: FieldMap = FieldMap(),  # noqa: B008 - frozen
                      limit: Optional[int] = None) -> list[Problem]:
    """Problems from a JSONL, JSON or Parquet file under a field mapping; ids must be unique."""
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for position, (where, row) in enumerate(iter_records(path)):
        problem = problem_from_record(row, fm, where, position, Path(path).parent)
        if problem.id in seen:
            raise ValueError(f"{where}: duplicate problem id {problem.id!r} (first at {seen[problem.id]})")
        seen[problem.id] = where
        problems.append(problem)
        if limit is not None and len(problems) >= limit:
            break
    if not problems:
        raise ValueError(f"{path}: no problems")
    return problems


def split_spec(spec: str) -> tuple[Optional[str], str]:
    """``PRESET:PATH`` -> (preset, path); a plain path -> (None, path)."""
    head, sep, tail = spec.partition(":")
    if sep and head in PRESETS:
        return head, tail
    return None, spec


def is_mapped_spec(spec: str) -> bool:
    """Whether load_problems hands ``spec`` to this module: a preset, a JSON or a Parquet file."""
    preset, path = split_spec(spec)
    return preset is not None or Path(path).suffix.lower() in (".json", ".parquet")


def load_mapped(spec: str, mapping: Optional[Mapping[str, Any]] = None, limit: Optional[int] = None) -> list[Problem]:
    """Problems from ``[PRESET:]PATH`` under a mapping (``{"mapping_file"?, "id"?, "prompt"?, ...}``)."""
    preset, path = split_spec(spec)
    mapping = dict(mapping or {})
    fm = field_map(preset, mapping.pop("mapping_file", None), **mapping)
    return load_problem_file(path, fm, limit)


def describe(fm: FieldMap) -> dict[str, Any]:
    """A FieldMap as JSON-ready settings (for a run's manifest)."""
    return {f.name: (list(v) if isinstance(v := getattr(fm, f.name), tuple) else v) for f in fields(fm)}


__all__: Sequence[str] = ("FieldMap", "PRESETS", "field_map", "iter_records", "load_problem_file", "load_mapped",
                          "problem_from_record", "livecodebench_problem", "last_boxed", "split_spec", "is_mapped_spec")


def load_problems(spec: str, limit: Optional[int] = None, seed: int = 0,
                  fields: Optional[Mapping[str, Any]] = None) -> list[Problem]:
    """``humaneval``, ``arith`` (or ``arith:COUNT``), a JSONL path, or a published benchmark file
    (``PRESET:PATH``, JSON, Parquet, or any file with a field mapping ``fields``: see
    below); ``limit`` takes the first P."""
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
