"""verl's reward functions (verl 0.9.1) against passkcore's (passkcore.integrations.verl), on the same
responses, in one run: speed ratios from alternating rounds (the CPU is shared), scores against the
label each response was written with, and a table of hostile and pathological inputs."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from verl.utils.reward_score import math_dapo, math_reward, prime_code
from verl.utils.reward_score import math_verify as verl_math_verify

from benches.conftest import ROOT, own_time, peer_time
from passkcore.integrations.verl import compute_score, compute_score_batch

ROUNDS = 3
# (gold, answers equal to it, answers that are not): MATH-style answers in the forms models write them.
ANSWERS = [
    ("\\frac{1}{2}", ["\\frac12", "0.5", "\\dfrac{1}{2}", "1/2"], ["\\frac{1}{3}", "2"]),
    ("72", ["72", "72.0"], ["71", "720"]),
    ("\\sqrt{2}", ["\\sqrt{2}", "2^{1/2}"], ["2", "\\sqrt{3}"]),
    ("(1,2)", ["(1, 2)", "(1,2)"], ["(2,1)", "(1,3)"]),
    ("3\\pi", ["3\\pi", "3 \\pi"], ["3", "\\pi"]),
    ("x^2+1", ["1+x^2", "x^2+1"], ["x^2-1", "x+1"]),
    ("-4", ["-4", "-4.0"], ["4", "-5"]),
    ("\\frac{9}{4}", ["2.25", "\\frac{9}{4}", "\\tfrac94"], ["\\frac{4}{9}", "2.5"]),
]


def math_responses(count: int = 400, seed: int = 0) -> list[tuple[str, str, bool]]:
    """(response, gold, written correct): a boxed answer (half of them), "Answer: ..." (Minerva's
    form), the answer in the last sentence without a box, or no answer."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        gold, same, other = rng.choice(ANSWERS)
        right = rng.random() < 0.6
        said = rng.choice(same if right else other)
        steps = f"We simplify step by step; the intermediate value is {rng.randint(2, 99)}."
        form = rng.random()
        if form < 0.5:
            response = f"{steps} So the final answer is $\\boxed{{{said}}}$."
        elif form < 0.7:
            response = f"{steps}\nAnswer: ${said}$"
        elif form < 0.9:
            response = f"{steps} Therefore the answer is ${said}$."
        else:
            response, right = "I could not finish this problem.", False
        out.append((response, gold, right))
    return out


def _alternate(ours: Callable[[], Any], theirs: Callable[[], Any], best_ours: float) -> tuple[float, float]:
    best_theirs = float("inf")
    for _ in range(ROUNDS):  # alternated: a burst of load from other processes hits both sides alike
        best_theirs = min(best_theirs, peer_time(theirs, repeats=1))
        best_ours = min(best_ours, peer_time(ours, repeats=1))
    return best_ours, best_theirs


def test_math_reward_vs_verl_math_verify(benchmark: Any) -> None:
    """400 mixed responses: compute_score_batch (the batch manager) against verl's math-verify reward
    called once per response, as its naive manager does; our per-response compute_score measured too.
    Where verl's score is the written label, ours must be too; math_reward and math_dapo (verl's
    string-matching rewards) are counted where they disagree with math-verify."""
    rows = math_responses()
    responses, golds = [r for r, _, _ in rows], [g for _, g, _ in rows]
    sources = ["lighteval/MATH"] * len(rows)

    def ours() -> list[dict[str, Any]]:
        return compute_score_batch(sources, responses, golds, None)

    def ours_one_by_one() -> list[dict[str, Any]]:
        return [compute_score("lighteval/MATH", r, g) for r, g in zip(responses, golds)]

    def theirs() -> list[float]:
        return [verl_math_verify.compute_score(r, g) for r, g in zip(responses, golds)]

    theirs()  # spawns verl's 4 workers and imports math-verify there: untimed, as ours' warm-up round
    results = benchmark.pedantic(ours, rounds=ROUNDS, warmup_rounds=1)
    t_ours, t_theirs = _alternate(ours, theirs, own_time(benchmark))
    t_single = min(peer_time(ours_one_by_one, repeats=1) for _ in range(2))
    verl_scores, singles = theirs(), ours_one_by_one()
    labels = [right for _, _, right in rows]
    acc = [r["acc"] for r in results]
    assert acc == [s["acc"] for s in singles]
    verl_right = [i for i, s in enumerate(verl_scores) if (s == 1.0) == labels[i]]
    assert [acc[i] for i in verl_right] == [labels[i] for i in verl_right], "ours differs where verl's is right"
    t0 = time.perf_counter()
    reward = [math_reward.compute_score(r, g) == 1.0 for r, g in zip(responses, golds)]
    t_reward = time.perf_counter() - t0
    t0 = time.perf_counter()
    dapo = [bool(math_dapo.compute_score(r, g)["acc"]) for r, g in zip(responses, golds)]
    t_dapo = time.perf_counter() - t0
    benchmark.extra_info.update(
        responses=len(rows), ours_batch_s=t_ours, ours_per_response_s=t_single, verl_math_verify_s=t_theirs,
        speed_ratio=t_theirs / t_ours, speed_ratio_per_response=t_theirs / t_single,
        ours_wrong=sum(a != lab for a, lab in zip(acc, labels)),
        verl_math_verify_wrong=len(rows) - len(verl_right),
        math_reward_disagrees=sum(a != b for a, b in zip(reward, acc)), math_reward_s=t_reward,
        math_dapo_disagrees=sum(a != b for a, b in zip(dapo, acc)), math_dapo_s=t_dapo)
    assert t_theirs / t_ours >= 1.0, f"{t_theirs / t_ours:.2f}x verl's math_verify reward"


STDIO_PROBLEMS = [  # (tests, a correct program, a wrong one)
    ({"inputs": ["1 2\n", "10 -3\n", "0 0\n", "999 1\n"], "outputs": ["3\n", "7\n", "0\n", "1000\n"]},
     "a, b = map(int, input().split())\nprint(a + b)", "a, b = map(int, input().split())\nprint(a - b)"),
    ({"inputs": ["abc\n", "racecar\n", "x\n", "hello world\n"], "outputs": ["cba\n", "racecar\n", "x\n", "dlrow olleh\n"]},
     "print(input()[::-1])", "print(input())"),
    ({"inputs": ["3\n1 5 2\n", "1\n-7\n", "4\n2 2 2 2\n", "5\n9 8 7 6 10\n"], "outputs": ["5\n", "-7\n", "2\n", "10\n"]},
     "input()\nprint(max(map(int, input().split())))", "input()\nprint(min(map(int, input().split())))"),
    ({"inputs": ["1\n", "10\n", "20\n", "30\n"], "outputs": ["1\n", "55\n", "6765\n", "832040\n"]},
     "n = int(input())\na, b = 0, 1\nfor _ in range(n):\n    a, b = b, a + b\nprint(a)",
     "n = int(input())\nprint(n * (n + 1) // 2)"),
    ({"inputs": ["3\n3 1 2\n", "2\n5 -1\n", "1\n4\n", "4\n4 3 2 1\n"], "outputs": ["1 2 3\n", "-1 5\n", "4\n", "1 2 3 4\n"]},
     "input()\nprint(*sorted(map(int, input().split())))", "input()\nprint(*map(int, input().split()))"),
    ({"inputs": ["a b c\n", "one\n", "  spaced   out  \n", "x y\n"], "outputs": ["3\n", "1\n", "2\n", "2\n"]},
     "import sys\nprint(len(sys.stdin.read().split()))", "print(input().count(' ') + 1)"),
]


def code_responses() -> list[tuple[str, str, bool]]:
    """24 responses to 6 stdin/stdout problems (4 tests each): 2 correct, 1 wrong and 1 crashing each."""
    out = []
    for tests, good, bad in STDIO_PROBLEMS:
        gt = json.dumps(tests)
        out += [(f"Here is my solution.\n```python\n{good}\n```", gt, True),
                (f"```python\n# read the input\n{good}\n```\nDone.", gt, True),
                (f"```python\n{bad}\n```", gt, False),
                (f"```python\n{good}\nraise ValueError('oops')\n```", gt, False)]
    return out


def test_code_reward_vs_prime_code(benchmark: Any) -> None:
    """24 stdin/stdout programs: compute_score_batch (sandboxed) against verl's prime_code (in-process
    tests in a forked process each), called once per response as verl's managers do (through
    default_compute_score: ``continuous=True``, which reruns a failing program's first 10 tests one by one)."""
    rows = code_responses()
    responses, truths = [r for r, _, _ in rows], [g for _, g, _ in rows]

    def ours() -> list[dict[str, Any]]:
        return compute_score_batch(["codecontests"] * len(rows), responses, truths, None)

    def theirs() -> list[bool]:
        # continuous=True as verl's default_compute_score calls it (with False, verl 0.9.1 raises
        # UnboundLocalError on every failing program); 1 (True) means every test passed.
        return [prime_code.compute_score(r, g, continuous=True)[0] == 1 for r, g in zip(responses, truths)]

    results = benchmark.pedantic(ours, rounds=ROUNDS, warmup_rounds=1)
    t_ours, t_theirs = _alternate(ours, theirs, own_time(benchmark))
    labels = [right for _, _, right in rows]
    verl = theirs()
    assert [r["acc"] for r in results] == labels
    benchmark.extra_info.update(programs=len(rows), ours_s=t_ours, verl_prime_code_s=t_theirs,
                                speed_ratio=t_theirs / t_ours, verl_wrong=sum(a != b for a, b in zip(verl, labels)))
    assert t_theirs / t_ours >= 1.0, f"{t_theirs / t_ours:.2f}x verl's prime_code"


PATHOLOGICAL = "\\boxed{9^{9^{9^{9^{9}}}}}"
_GT = json.dumps({"inputs": ["1 2\n", "3 4\n"], "outputs": ["3\n", "7\n"]})
_CALLS = json.dumps({"fn_name": "add", "inputs": ["1\n2", "3\n4"], "outputs": ["3", "7"]})
_PATCH_GRADER = ("import sys\nm = sys.modules['verl.utils.reward_score.prime_code.testing_util']\n"
                 "m.custom_compare_ = lambda output, expected: True\nprint('not the answer')")
_READ_TESTS = ("import gc, sys\nx = sys.stdin.read()\nfor o in gc.get_objects():\n"
               "    if isinstance(o, dict) and 'inputs' in o and 'outputs' in o and x in o['inputs']:\n"
               "        print(o['outputs'][o['inputs'].index(x)]); break")
_EQ_ALWAYS = "class L(list):\n    def __eq__(self, other):\n        return True\n\ndef add(a, b):\n    return L()"
# (name, verl function, verl's call as Python source, our data source, response, ground truth, written score)
HOSTILE = [
    ("math: 9^9^9^9^9 (Math-Verify #65)", "math_verify.compute_score(timeout=5)",
     f"math_verify.compute_score({PATHOLOGICAL!r}, '81', timeout=5)", "math_dapo", PATHOLOGICAL, "81", 0.0),
    ("math: honest \\boxed{72} after 4 of those", "math_verify.compute_score(timeout=5)",
     "[math_verify.compute_score(" + repr(PATHOLOGICAL) + ", '81', timeout=5) for _ in range(4)] and None or "
     "math_verify.compute_score('\\\\boxed{72}', '72', timeout=5)", "openai/gsm8k", "\\boxed{72}", "72", 1.0),
    ("math: 'Answer: $' + 290 x 'a' (math_dapo's normaliser)", "math_dapo.compute_score",
     "math_dapo.compute_score('Answer: $' + 'a' * 290, '1')", "math_dapo", "Answer: $" + "a" * 290, "1", 0.0),
    ("math: right answer 400 characters before the end", "math_dapo.compute_score",
     "math_dapo.compute_score('Answer: 7\\n' + 'I double-checked it. ' * 20, '7')", "math_dapo",
     "Answer: 7\n" + "I double-checked it. " * 20, "7", 1.0),
    ("code: sleeps 30 s", "prime_code.compute_score",
     "prime_code.compute_score('```python\\nimport time\\ntime.sleep(30)\\n```', " + repr(_GT) + ", continuous=True)", "apps",
     "```python\nimport time\ntime.sleep(30)\n```", _GT, 0.0),
    ("code: patches the grader, prints a wrong answer", "prime_code.compute_score",
     f"prime_code.compute_score({('```python' + chr(10) + _PATCH_GRADER + chr(10) + '```')!r}, {_GT!r}, continuous=True)", "apps",
     f"```python\n{_PATCH_GRADER}\n```", _GT, 0.0),
    ("code: finds the expected output in memory (gc)", "prime_code.compute_score",
     f"prime_code.compute_score({('```python' + chr(10) + _READ_TESTS + chr(10) + '```')!r}, {_GT!r}, continuous=True)", "apps",
     f"```python\n{_READ_TESTS}\n```", _GT, 0.0),
    ("code: returns a list whose == is always True", "prime_code.compute_score",
     f"prime_code.compute_score({('```python' + chr(10) + _EQ_ALWAYS + chr(10) + '```')!r}, {_CALLS!r}, continuous=True)", "apps",
     f"```python\n{_EQ_ALWAYS}\n```", _CALLS, 0.0),
    ("code: no tests in the ground truth", "prime_code.compute_score",
     "prime_code.compute_score('```python\\nprint(1)\\n```', '{\"inputs\": [], \"outputs\": []}', continuous=True)", "apps",
     "```python\nprint(1)\n```", '{"inputs": [], "outputs": []}', 0.0),
]
_CHILD = """
import json, sys, time, os
from verl.utils.reward_score import math_dapo, math_verify, prime_code
if __name__ == "__main__":
    open(sys.argv[1] + ".ready", "w").close()
    start = time.perf_counter()
    result = {expr}
    with open(sys.argv[1] + ".part", "w") as fh:
        json.dump({{"result": repr(result)[:60], "s": time.perf_counter() - start}}, fh)
    os.replace(sys.argv[1] + ".part", sys.argv[1])
    os._exit(0)  # math_verify's stuck workers would hold a normal exit
"""
IMPORT_LIMIT_S = 300.0  # verl imports torch and Ray: tens of seconds on this loaded machine


def _wait_for(path: Path, proc: subprocess.Popen[bytes], limit_s: float) -> bool:
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        if path.exists() or proc.poll() is not None:
            return path.exists()
        time.sleep(0.05)
    return path.exists()


def verl_side(expr: str, folder: Path, limit_s: float = 60.0) -> tuple[str, float]:
    """verl's call in a child process of its own session (killed, with whatever it started, once it
    has written its result or ``limit_s`` after its imports): what it returned and how long it took."""
    out = folder / "verl.json"
    ready = Path(str(out) + ".ready")
    out.unlink(missing_ok=True)
    ready.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", _CHILD.format(expr=expr), str(out)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        finished = _wait_for(ready, proc, IMPORT_LIMIT_S) and _wait_for(out, proc, limit_s)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its session: the child and the workers it spawned
        except ProcessLookupError:
            pass
        proc.wait()
    if not finished:
        return (f"still running after {limit_s:g} s", limit_s) if ready.exists() else (
            f"did not start (exit {proc.returncode})", float("nan"))
    got = json.loads(out.read_text())
    return str(got["result"]), float(got["s"])


def test_hostile_inputs_table(benchmark: Any, tmp_path: Path) -> None:
    """Each hostile or pathological input through verl's function (in a child process, as verl would
    run it) and through compute_score; ours must give the written score and none may take more than its
    limit (5 s a math answer or a test)."""
    compute_score_batch(["openai/gsm8k", "apps"], ["\\boxed{1}", "```python\nprint(3)\n```"], ["1", _GT], None)  # warm
    rows = []
    for name, fn, expr, source, response, truth, written in HOSTILE:
        theirs, t_theirs = verl_side(expr, tmp_path)
        if "no tests" in name:
            t0 = time.perf_counter()
            try:
                ours: Any = compute_score(source, response, truth)["score"]
            except ValueError as exc:
                ours = f"ValueError: {str(exc)[-40:]}"
            rows.append((name, fn, theirs, t_theirs, ours, time.perf_counter() - t0))
            continue
        t0 = time.perf_counter()
        ours = compute_score(source, response, truth)["score"]
        rows.append((name, fn, theirs, t_theirs, ours, time.perf_counter() - t0))
        assert ours == written, name
    batch = [h for h in HOSTILE if "no tests" not in h[0]]
    out = benchmark.pedantic(lambda: compute_score_batch([h[3] for h in batch], [h[4] for h in batch],
                                                         [h[5] for h in batch], None), rounds=1)
    assert [r["score"] for r in out] == [h[6] for h in batch]
    table = ["| input | verl's function | verl returns | verl s | passkcore returns | passkcore s |", "|---|---|---|---|---|---|"]
    table += [f"| {n} | `{f}` | {t} | {ts:.2f} | {o} | {os_:.2f} |" for n, f, t, ts, o, os_ in rows]
    print("\n" + "\n".join(table))
    benchmark.extra_info.update(hostile_batch_s=own_time(benchmark), rows=len(rows))
    for n, _, t, ts, o, os_ in rows:
        benchmark.extra_info[n[:40]] = f"verl {t} in {ts:.1f}s; ours {o} in {os_:.1f}s"
