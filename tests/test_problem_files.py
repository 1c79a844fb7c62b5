"""Published benchmark files: field mappings, presets on the public layouts, errors naming the place."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from passkcore.problem_files import PRESETS, field_map, last_boxed, load_problem_file, load_problems

# First lines of the RLVR paper's data folder (limit-of-RLVR/math/examples/math_eval/data/<bench>/test.jsonl)
# and of the public HumanEval+/MBPP+ files, shortened.
ROWS = {
    "math500": {"problem": "Convert $(0,3)$ to polar.", "solution": "... $\\boxed{(3,\\frac{\\pi}{2})}$",
                "answer": "\\left( 3, \\frac{\\pi}{2} \\right)", "subject": "Precalculus", "level": 2,
                "unique_id": "test/precalculus/807.json"},
    "aime24": {"id": 60, "problem": " Every morning Aya walks. ", "solution": "...", "answer": "204", "url": "u"},
    "amc23": {"id": 0, "problem": "Cities A and B.", "answer": 27.0, "url": "u", "question": "Cities A and B."},
    "gsm8k": {"question": "Janet's ducks lay 16 eggs.", "answer": "16 - 3 - 4 = 9\n#### 18"},
    "minerva": {"problem": "Magellan telescopes.", "solution": "so $\\boxed{1.6}$ cm.", "type": "Astro", "idx": 0},
    "olympiadbench": {"id": 1606, "subfield": "Combinatorics", "context": None, "question": "Xenia and Sergey.",
                      "solution": ["..."], "final_answer": ["$2$"], "is_multiple_answer": False},
}
EXPECTED = {"math500": ("0", "\\left( 3, \\frac{\\pi}{2} \\right)"), "aime24": ("0", "204"), "amc23": ("0", "27.0"),
            "gsm8k": ("0", "18"), "minerva": ("0", "1.6"), "olympiadbench": ("0", "2")}


@pytest.mark.parametrize("preset", sorted(ROWS))
def test_math_presets(preset: str, tmp_path: Path) -> None:
    path = tmp_path / "test.jsonl"
    path.write_text(json.dumps(ROWS[preset]) + "\n" + json.dumps(ROWS[preset]).replace("\"idx\": 0", "\"idx\": 1") + "\n")
    problems = load_problems(f"{preset}:{path}")
    assert (problems[0].id, problems[0].answer) == EXPECTED[preset]
    assert problems[1].id == "1" and problems[0].kind == "math"
    assert problems[0].prompt == problems[0].prompt.strip()


def test_humaneval_plus_and_mbpp_plus(tmp_path: Path) -> None:
    he = {"task_id": "HumanEval/0", "prompt": "def f(x):\n", "entry_point": "f", "canonical_solution": "  return x\n",
          "test": "def check(candidate):\n    assert candidate(1) == 1\n", "base_input": [[1]], "plus_input": [], "atol": 0}
    mbpp = {"task_id": "Mbpp/2", "prompt": "\"\"\"Write f.\"\"\"\n", "entry_point": "f", "canonical_solution": "...",
            "test": "inputs = [[1]]\nresults = [1]\nfor i, (inp, exp) in enumerate(zip(inputs, results)):\n"
                    "    assert f(*inp) == exp\n", "base_input": [[1]], "plus_input": [], "atol": 0}
    for preset, row in (("humaneval+", he), ("mbpp+", mbpp)):
        path = tmp_path / f"{preset}.jsonl"
        path.write_text(json.dumps(row) + "\n")
        (p,) = load_problems(f"{preset}:{path}")
        assert p.kind == "code" and p.entry_point == "f" and p.id == row["task_id"] and "def check(" in str(p.tests)


def test_field_mapping_on_json_and_parquet(tmp_path: Path) -> None:
    rows = [{"qid": "a", "question": "1+1?", "gt": 2}, {"qid": "b", "question": "2+2?", "gt": 4}]
    (tmp_path / "p.json").write_text(json.dumps(rows))
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "p.parquet")
    fields = {"id": "qid", "prompt": "question", "answer": "gt"}
    for name in ("p.json", "p.parquet"):
        problems = load_problems(str(tmp_path / name), fields=fields)
        assert [(p.id, p.prompt, p.answer) for p in problems] == [("a", "1+1?", "2"), ("b", "2+2?", "4")]
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps(fields))
    assert load_problems(str(tmp_path / "p.parquet"), fields={"mapping_file": str(mapping)}, limit=1)[0].id == "a"


def test_errors_name_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"problem": "x", "answer": "1"}) + "\n" + json.dumps({"answer": "2"}) + "\n")
    with pytest.raises(ValueError, match=r"p.jsonl:2: missing or empty prompt field \('problem',\)"):
        load_problems(f"math500:{path}")
    with pytest.raises(ValueError, match=r"p.jsonl:1: missing id field 'uid'"):
        load_problems(str(path), fields={"id": "uid", "prompt": "problem"})
    path.write_text(json.dumps({"question": "x", "answer": "no marker"}) + "\n")
    with pytest.raises(ValueError, match=r"p.jsonl:1: field 'answer' has no '#### answer' line"):
        load_problems(f"gsm8k:{path}")
    path.write_text(json.dumps({"idx": 1, "problem": "x", "answer": "1"}) + "\n" + json.dumps({"idx": 1, "problem": "y", "answer": "1"}) + "\n")
    with pytest.raises(ValueError, match=r"p.jsonl:2: duplicate problem id '1'"):
        load_problems(f"math500:{path}")
    pq.write_table(pa.Table.from_pylist([{"prompt": "a", "answer": "1"}]), tmp_path / "p.parquet")
    with pytest.raises(ValueError, match=r"p.parquet: row 0: missing id field 'id'"):
        load_problems(str(tmp_path / "p.parquet"))
    with pytest.raises(ValueError, match="unknown preset"):
        field_map("math5000")
    (tmp_path / "m.json").write_text(json.dumps({"question_field": "q"}))
    with pytest.raises(ValueError, match="unknown key.*question_field"):
        field_map(mapping_file=tmp_path / "m.json")


LCB = Path(__file__).parent / "fixtures" / "problems" / "livecodebench_test.jsonl"  # make_livecodebench.py


def test_livecodebench_preset_builds_io_kinds() -> None:
    stdin, functional = load_problems(f"livecodebench:{LCB}")
    # public then private (the compressed) test cases
    assert (stdin.id, stdin.kind, stdin.inputs, stdin.outputs) == ("abc300_a", "code_stdio", ["1\n", "41\n"],
                                                                    ["2\n", "42\n"])
    assert (functional.id, functional.kind, functional.entry_point) == ("2815", "code_io", "Solution.maxSum")
    assert functional.inputs == [[[1, 5, 3]], [[2, 2]]] and functional.outputs == [8, 4]
    assert "class Solution" in functional.prompt


@pytest.mark.parametrize("kind", ["stdin", "functional"])
def test_livecodebench_problems_verify(kind: str) -> None:
    from passkcore.verify import verify_rows

    problems = {p.id: p for p in load_problems(f"livecodebench:{LCB}")}
    pid = "abc300_a" if kind == "stdin" else "2815"
    right = ("```python\nprint(int(input()) + 1)\n```" if kind == "stdin" else
             "```python\nclass Solution:\n    def maxSum(self, nums: List[int]) -> int:\n"
             "        return sum(sorted(nums)[-2:])\n```")
    wrong = right.replace("+ 1", "+ 2").replace("[-2:]", "[-1:]")
    rows = [{"problem_id": pid, "sample_index": i, "response": r} for i, r in enumerate((right, wrong))]
    good, bad = verify_rows(rows, problems, workers=1)
    assert good.passed and good.tests_passed == good.tests_total == 2, good
    assert not bad.passed and bad.tests_passed == 0, bad


def test_last_boxed_and_presets_listed() -> None:
    assert last_boxed("a \\boxed{1} b \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert last_boxed("none") is None
    assert {"math500", "aime24", "aime25", "amc23", "gsm8k", "minerva", "olympiadbench", "humaneval", "humaneval+",
            "mbpp+", "livecodebench"} <= set(PRESETS)


def test_generic_mapping_default_file_is_strict(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"x": {"id": "x", "prompt": "p", "answer": "1"}}))
    assert [p.id for p in load_problem_file(path)] == ["x"]
