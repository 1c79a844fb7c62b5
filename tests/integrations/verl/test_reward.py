"""passkcore.integrations.verl.compute_score / compute_score_batch: exact on honest math and code, 0 for
pathological answers and hostile programs without stalling the others, verl's routing and contracts."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import threading
import time

import numpy as np
import psutil
import pytest

from passkcore.integrations import verl as pv
from passkcore.integrations.verl import programs

STDIO = json.dumps({"inputs": ["1 2\n", "3 4\n", "10 -5\n"], "outputs": ["3\n", "7\n", "5\n"]})
HONEST = "Here it is.\n```python\na, b = map(int, input().split())\nprint(a + b)\n```\n"
WRONG = "```python\na, b = map(int, input().split())\nprint(a - b)\n```"
CALLS = {"fn_name": "add", "inputs": [[1, 2], [3, 4]], "outputs": [[3], [7]]}  # APPS: results wrapped in a list
PRIME_CALLS = json.dumps({"fn_name": "add", "inputs": ["1\n2", "3\n4"], "outputs": ["3", "7"]})  # prime_code's text
FAST = {"code_timeout_s": 1.0, "math_timeout_s": 2.0}


def test_signatures_are_verls() -> None:
    assert list(inspect.signature(pv.compute_score).parameters) == [
        "data_source", "solution_str", "ground_truth", "extra_info", "kwargs"]
    assert list(inspect.signature(pv.compute_score_batch).parameters) == [
        "data_sources", "solution_strs", "ground_truths", "extra_infos", "kwargs"]


def test_math_scores_and_canonical_pred() -> None:
    half = pv.compute_score("lighteval/MATH", "So the answer is $\\boxed{\\dfrac12}$.", "\\frac{1}{2}")
    assert half == {"score": 1.0, "acc": True, "pred": "1/2"}
    # The same answer written otherwise has the same pred (maj@k groups them); a wrong one scores 0.
    assert pv.compute_score("HuggingFaceH4/MATH-500", "\\boxed{0.5}", "\\frac{1}{2}")["acc"] is True
    wrong = pv.compute_score("openai/gsm8k", "The total is \\boxed{71}.", "72")
    assert wrong == {"score": 0.0, "acc": False, "pred": "71"}
    assert pv.compute_score("aime2024", "no answer at all", "72") == {"score": 0.0, "acc": False, "pred": None}


def test_code_stdio_calls_and_continuous() -> None:
    assert pv.compute_score("codecontests", HONEST, STDIO)["score"] == 1.0
    wrong = pv.compute_score("codecontests", WRONG, STDIO)
    assert wrong["score"] == 0.0 and wrong["acc"] is False
    # verl's `continuous`: the fraction of passed tests (10 - -5 = 15 fails, 1 - 2 and 3 - 4 too: 0 of 3).
    half = "```python\na, b = map(int, input().split())\nprint(a + b if a < 5 else 0)\n```"
    assert pv.compute_score("codecontests", half, STDIO, continuous=True) == pytest.approx(
        {"score": 2 / 3, "acc": False, "pred": pv.compute_score("codecontests", half, STDIO)["pred"]})
    assert pv.compute_score("apps", "```python\ndef add(a, b):\n    return a + b\n```", CALLS)["score"] == 1.0
    solution = "```python\nclass Solution:\n    def add(self, a: int, b: int) -> int:\n        return a + b\n```"
    assert pv.compute_score("taco", solution, PRIME_CALLS)["score"] == 1.0
    assert pv.compute_score("taco", "```python\ndef add(a, b):\n    return a * b\n```", PRIME_CALLS)["score"] == 0.0


def test_program_is_the_last_python_block_and_equal_outputs_share_pred() -> None:
    response = "```python\nprint('draft')\n```\nFixed:\n```python\nprint(sum(map(int, input().split())))\n```\n```text\n3\n```"
    ok = pv.compute_score("codeforces", response, STDIO)
    assert ok["score"] == 1.0 and ok["pred"] == pv.compute_score("codeforces", HONEST, STDIO)["pred"]
    assert programs.extract_program("a, b = 1, 2\nprint(a)") == "a, b = 1, 2\nprint(a)"  # no fence: the program
    assert programs.extract_program("```cpp\nint main(){}\n```") is None
    assert pv.compute_score("apps", "I cannot solve this.\n```\n\n```", STDIO) == {"score": 0.0, "acc": False, "pred": None}


HOSTILE = {
    "sleeps": "import time\ntime.sleep(30)\nprint(3)",
    "prints the answer then exits 1": "import sys\nprint(sum(map(int, input().split())))\nsys.exit(1)",
    "kills itself": "import os, signal\nprint(3)\nos.kill(os.getpid(), signal.SIGKILL)",
    "kills its parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint(3)",
    "forks": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        break\nprint(3)",
    "fills memory": "x = []\nwhile True:\n    x.append(bytearray(2**24))",
    "prints too much": "import sys\nwhile True:\n    sys.stdout.write('3\\n' * 100000)",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_programs_score_zero_and_do_not_touch_the_honest(name: str) -> None:
    start = time.monotonic()
    out = pv.compute_score_batch(["apps", "apps", "apps"], [HONEST, f"```python\n{HOSTILE[name]}\n```", HONEST],
                                 [STDIO] * 3, None, **FAST)
    assert [r["score"] for r in out] == [1.0, 0.0, 1.0], name
    assert time.monotonic() - start < 15  # 3 tests x 1 s at most, plus the sandboxes


def test_forged_equality_in_a_call_scores_zero() -> None:
    # prime_code compares `output == expected` in the program's own process: this list equals anything.
    forged = "```python\nclass L(list):\n    def __eq__(self, other):\n        return True\n\ndef add(a, b):\n    return L()\n```"
    assert pv.compute_score("apps", forged, CALLS)["score"] == 0.0


def test_pathological_math_is_killed_and_others_keep_their_reward() -> None:
    start = time.monotonic()
    out = pv.compute_score_batch(
        ["math_dapo", "openai/gsm8k", "numina_olympiads", "apps"],
        ["\\boxed{9^{9^{9^{9^{9}}}}}", "so \\boxed{72}", "\\boxed{(1,2)}", HONEST], ["81", "72", "(1, 2)", STDIO],
        [{}, {}, {}, {}], math_timeout_s=1.0, code_timeout_s=1.0)
    assert [r["score"] for r in out] == [0.0, 1.0, 1.0, 1.0]
    assert time.monotonic() - start < 20


def test_routing_override_and_ambiguity() -> None:
    # Unknown sources: a string is math, a JSON object (or dict) of tests is code.
    assert pv.compute_score("my_math", "\\boxed{4}", "4")["score"] == 1.0
    assert pv.compute_score("my_code", HONEST, STDIO)["score"] == 1.0
    assert pv.compute_score("my_code", HONEST, json.loads(STDIO))["score"] == 1.0
    assert pv.compute_score("my_set", "\\boxed{\\{1,2\\}}", "{1,2}")["score"] == 1.0  # a set, not tests
    assert pv.compute_score("openai/gsm8k", "\\boxed{4}", np.int64(4))["score"] == 1.0
    # extra_info overrides the data source's kind.
    assert pv.compute_score("apps", "\\boxed{4}", "4", {"passk": "math"})["score"] == 1.0
    with pytest.raises(ValueError, match="my_source"):
        pv.compute_score("my_source", "\\boxed{4}", ["4", "four"])
    with pytest.raises(ValueError, match="passk"):
        pv.compute_score("openai/gsm8k", "\\boxed{4}", "4", {"passk": "chemistry"})
    with pytest.raises(ValueError, match="apps.*inputs"):
        pv.compute_score("apps", HONEST, "72")
    with pytest.raises(ValueError, match="no tests"):
        pv.compute_score("apps", HONEST, {"inputs": [], "outputs": []})  # prime_code gives 1.0 here
    with pytest.raises(ValueError, match="2 inputs but 1 outputs"):
        pv.compute_score("apps", HONEST, {"inputs": ["1", "2"], "outputs": ["1"]})


def test_options_checked_and_verls_keywords_accepted() -> None:
    with pytest.raises(ValueError, match="timeout"):
        pv.compute_score("openai/gsm8k", "\\boxed{4}", "4", timeuot=3)
    with pytest.raises(ValueError, match="code_timeout_s"):
        pv.compute_score("openai/gsm8k", "\\boxed{4}", "4", code_timeout_s=0)
    with pytest.raises(ValueError, match="memory_mb"):
        pv.compute_score("openai/gsm8k", "\\boxed{4}", "4", memory_mb=100)
    # What verl's reward loop hands every reward function when a reward model runs: ignored.
    assert pv.compute_score("openai/gsm8k", "\\boxed{4}", "4", reward_router_address=None,
                            reward_model_tokenizer=None)["score"] == 1.0


def test_batch_order_numpy_inputs_and_lengths() -> None:
    sources = np.array(["apps", "openai/gsm8k", "codecontests", "lighteval/MATH", "apps"], dtype=object)
    responses = [WRONG, "\\boxed{72}", HONEST, "\\boxed{3}", HONEST]
    truths = np.array([STDIO, "72", STDIO, "4", STDIO], dtype=object)
    infos = np.array([{} for _ in range(5)], dtype=object)
    out = pv.compute_score_batch(data_sources=sources, solution_strs=responses, ground_truths=truths,
                                 extra_infos=infos, code_workers=2, math_workers=2)
    assert [r["score"] for r in out] == [0.0, 1.0, 1.0, 0.0, 1.0]
    assert all(set(r) == {"score", "acc", "pred"} and isinstance(r["score"], float) for r in out)
    assert pv.compute_score_batch([], [], [], []) == []
    with pytest.raises(ValueError, match="ground_truths has 1 entries but solution_strs has 2"):
        pv.compute_score_batch(["a", "b"], ["x", "y"], ["1"], None)


def test_judges_are_kept_across_calls() -> None:
    pv.compute_score_batch(["apps"] * 2, [HONEST, WRONG], [STDIO] * 2, None, code_workers=2)
    made = list(programs.JUDGES.judges)
    pv.compute_score_batch(["apps"] * 2, [WRONG, HONEST], [STDIO] * 2, None, code_workers=2)
    assert programs.JUDGES.judges == made and len(made) >= 1


def test_calls_from_threads_that_end_leave_working_sandboxes() -> None:
    # verl's reward loop calls from executor threads; bubblewrap's --die-with-parent follows the thread
    # that forked it, so sandboxes are forked by passkcore.verify.spawner's long-lived thread instead.
    scores: list[float] = []
    for _ in range(2):
        worker = threading.Thread(target=lambda: scores.append(pv.compute_score("apps", HONEST, STDIO)["score"]))
        worker.start()
        worker.join()
    scores.append(pv.compute_score("apps", HONEST, STDIO)["score"])
    assert scores == [1.0, 1.0, 1.0]


_EXITING = """
import json, psutil
from passkcore.integrations.verl import compute_score_batch
if __name__ == "__main__":
    STDIO = json.dumps({"inputs": ["1 2\\n"], "outputs": ["3\\n"]})
    out = compute_score_batch(["apps", "openai/gsm8k"], ["print(3)", "\\\\boxed{1}"], [STDIO, "1"], None)
    assert [r["score"] for r in out] == [1.0, 1.0], out
    print(json.dumps([p.pid for p in psutil.Process().children(recursive=True)]))
"""


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_workers_end_with_the_process() -> None:
    run = subprocess.run([sys.executable, "-c", _EXITING], capture_output=True, text=True, timeout=120, check=True)
    pids = json.loads(run.stdout.strip().splitlines()[-1])
    assert pids  # math workers, the forkserver, the judges' sandboxes
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    assert not [p for p in pids if _alive(p)], "still running after the caller exited"
