"""passkcore.integrations.lm_eval metric functions, called as lm-eval calls them."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import passkcore
from passkcore.integrations import lm_eval as le
from tests.integrations.code_completions import HUMANEVAL_REFERENCE, batch, unbiased_pass_at_k


def call(fn, gold, responses, **kwargs):  # noqa: ANN001, ANN202 - lm-eval's calling convention
    return fn(references=[gold], predictions=[responses], **kwargs)


def test_signatures() -> None:
    for fn in (le.pass_at_k, le.maj_at_k):
        params = inspect.signature(fn).parameters
        assert list(params)[:4] == ["references", "predictions", "k", "judge"] and params["k"].default == 1
        assert params["judge"].default == "math"
    assert list(inspect.signature(le.code_pass_at_k).parameters)[:3] == ["references", "predictions", "k"]


def test_pass_at_k_math_judge_per_document() -> None:
    responses = ["The answer is \\boxed{\\frac{1}{2}}", "0.5", "It is 3", "\\boxed{2}"]
    out = call(le.pass_at_k, "1/2", responses, k=[1, 2, 4])
    assert list(out) == ["pass@1", "pass@2", "pass@4"]
    want = passkcore.pass_at_k(4, [2], [1, 2, 4])[0]
    assert [out[f"pass@{k}"] for k in (1, 2, 4)] == pytest.approx(want.tolist(), abs=0)
    assert call(le.pass_at_k, 7, ["7"]) == {"pass@1": 1.0}  # an int gold, a take_first task's single string


def test_exact_and_callable_judges() -> None:
    assert call(le.pass_at_k, " 42", ["42 ", "41", "4 2"], judge="exact", k=1)["pass@1"] == pytest.approx(1 / 3)
    out = call(le.pass_at_k, "x", ["a", "B", "c"], judge=lambda r, g: r.isupper(), k=[1, 3])
    assert out == pytest.approx({"pass@1": 1 / 3, "pass@3": 1.0})


def test_maj_at_k_uses_the_cores_tie_rule_and_math_classes() -> None:
    # Classes: correct {1/2, 0.5, \frac12} (3), wrong {3, \boxed{3}} (2), {7} (1); one response without an answer.
    responses = ["\\boxed{1/2}", "0.5", "\\boxed{\\frac12}", "3", "\\boxed{3}", "7", "no idea"]
    out = call(le.maj_at_k, "\\frac{1}{2}", responses, k=[1, 3, 7])
    want = passkcore.maj_at_k([np.array([3, 2, 1])], [0], [1, 3, 7], abstain=[1])[0]
    assert [out[f"maj@{k}"] for k in (1, 3, 7)] == pytest.approx(want.tolist(), abs=1e-15)
    assert out["maj@7"] == 1.0
    # exact judge: classes by stripped text; a 1-1 tie between the correct class and another is split.
    assert call(le.maj_at_k, "a", ["a", "b"], judge="exact", k=2) == {"maj@2": 0.5}


@pytest.mark.parametrize("kwargs, match", [
    ({"k": 5}, "k=5 exceeds the document's n=4"),
    ({"k": 0}, "k=0"),
    ({"k": "2"}, "k='2'"),
    ({"k": []}, "k is empty"),
    ({"judge": "fuzzy"}, "judge='fuzzy'"),
    ({"bogus": 1}, "unknown metric option.*bogus"),
    ({"timeout_s": None}, "timeout_s must be a positive float, got timeout_s=None"),
    ({"extract": "loose"}, "extract='loose'"),
])
def test_bad_input_is_a_value_error_never_a_type_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call(le.pass_at_k, "1", ["1", "2", "3", "4"], **kwargs)


@pytest.mark.parametrize("references, predictions, match", [
    ("1", [["1"]], "references must be a one-element list"),
    (["1"], "1", "predictions must be a one-element list"),
    (["1"], [[]], r"predictions\[0\] must be a response string or a non-empty list"),
    (["1"], [["1", 2]], r"predictions\[0\]\[1\] must be a string"),
    ([None], [["1"]], r"references\[0\] must be one answer"),
])
def test_bad_shapes_are_value_errors(references: object, predictions: object, match: str) -> None:
    for fn in (le.pass_at_k, le.maj_at_k, le.code_pass_at_k):
        with pytest.raises(ValueError, match=match):
            fn(references=references, predictions=predictions)
    with pytest.raises(ValueError, match="the reference '' cannot be judged: .*could not be parsed"):
        call(le.pass_at_k, "", ["1"])
    with pytest.raises(ValueError, match="must return a bool"):
        call(le.pass_at_k, "1", ["1"], judge=lambda r, g: "yes")


def test_code_pass_at_k_runs_in_the_sandbox() -> None:
    tests = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n\ncheck(add)\n"
    programs = ["def add(a, b):\n    return a + b\n", "def add(a, b):\n    return a - b\n",
                # Forgeries: exit before the asserts run, and rebinding AssertionError in its own process.
                "import sys\ndef add(a, b):\n    sys.exit(0)\n", "AssertionError = Exception\ndef add(a, b):\n    return 0\n"]
    out = call(le.code_pass_at_k, tests, programs, k=[1, 4])
    assert out == pytest.approx({"pass@1": 0.25, "pass@4": 1.0})


def test_shipped_yamls_parse_and_name_our_functions() -> None:
    folder = le.tasks_dir()
    names = sorted(p.name for p in folder.iterdir())
    assert {"_passk_math_template", "gsm8k_passk.yaml", "math500_passk.yaml", "humaneval_passk.yaml"} <= set(names)

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))
    for path in folder.iterdir():
        cfg = yaml.load(Path(path).read_text(), Loader=Loader)  # noqa: S506 - SafeLoader subclass
        for entry in cfg.get("metric_list", []):
            module, _, name = entry["metric"].rpartition(".")
            assert module == "passkcore.integrations.lm_eval" and callable(getattr(le, name))
            assert entry["aggregation"] == "mean"


def test_code_pass_at_k_judges_every_kind_of_completion() -> None:
    """One document's completions of every kind, HumanEval's reference layout: the metric returns the
    unbiased pass@k of their verdicts (the honest ones pass, the others fail), never an exception."""
    programs, passes, _ = batch()
    ks = [1, 4, len(programs)]
    out = call(le.code_pass_at_k, HUMANEVAL_REFERENCE, programs, k=ks, num_workers=2, timeout=5.0)
    c = sum(passes)
    assert 0 < c < len(programs)
    assert out == pytest.approx({f"pass@{k}": unbiased_pass_at_k(len(programs), c, k) for k in ks}, rel=1e-12)


def test_pass_at_k_from_a_script_without_a_main_guard(tmp_path: Path) -> None:
    """A metric called from a plain script (no `if __name__ == "__main__":`) verifies math, and the
    script runs once: the math workers never import the caller's main module."""
    script = tmp_path / "metric.py"
    script.write_text(
        "import json, pathlib\n"
        "runs = pathlib.Path(__file__).with_name('runs')\n"
        "runs.write_text(runs.read_text() + 'x' if runs.exists() else 'x')\n"
        "from passkcore.integrations.lm_eval import maj_at_k, pass_at_k\n"
        "responses = ['\\\\boxed{2}', '3', 'so it is 2', '\\\\boxed{4}']\n"
        "print(json.dumps([pass_at_k(['2'], [responses], k=[1, 2], workers=2),\n"
        "                  maj_at_k(['2'], [responses], k=[1])]))\n")
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    pass_k, maj_k = json.loads(run.stdout.strip().splitlines()[-1])
    assert pass_k == pytest.approx({"pass@1": 0.5, "pass@2": 1 - 1 / 6})
    assert maj_k == pytest.approx({"maj@1": 0.5})
    assert (tmp_path / "runs").read_text() == "x"


def test_extract_option_reaches_the_math_verifier() -> None:
    responses = ["so it is 2", "\\boxed{2}"]
    assert call(le.pass_at_k, "2", responses, k=1) == pytest.approx({"pass@1": 1.0})
    assert call(le.pass_at_k, "2", responses, k=1, extract="boxed") == pytest.approx({"pass@1": 0.5})
