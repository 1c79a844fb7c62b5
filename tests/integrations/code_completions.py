"""Completions of every kind, for one code_eval batch: honest programs that bind ``add`` every way a
program can, and wrong, broken and hostile ones. Shared by the code_eval and lm-eval code tests."""

from __future__ import annotations

import math

# The tests call `add` and expect a raise for None: a missing `add` must fail even past `except Exception`.
REFERENCE = (
    "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n"
    "try:\n    add(None, 1)\nexcept Exception:\n    pass\nelse:\n    raise AssertionError('add(None, 1) must raise')\n"
)
# HumanEval's layout: a check(candidate) and a call naming the entry point.
HUMANEVAL_REFERENCE = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n\ncheck(add)\n"

HONEST = {
    "def": "def add(a, b):\n    return a + b\n",
    "lambda": "add = lambda a, b: a + b\n",
    "alias": "def plus(a, b):\n    return a + b\n\nadd = plus\n",
    "import": "from operator import add\n",
    "exec": "exec('def add(a, b):\\n    return a + b\\n')\n",
    "globals": "globals()['add'] = lambda a, b: a + b\n",
    "bound_later": "def _setup():\n    global add\n    add = lambda a, b: a + b\n\n_setup()\n",
    "method": "class Adder:\n    def add(self, a, b):\n        return a + b\n\nadd = Adder().add\n",
    "in_if": "import sys\nif sys.version_info >= (3,):\n    def add(a, b):\n        return a + b\n",
}
# (program, what its result must contain)
FAILING = {
    "empty": ("", "'add' is not defined"),
    "comment_only": ("# TODO\n", "'add' is not defined"),
    "other_name": ("def plus(a, b):\n    return a + b\n", "'add' is not defined"),
    "deleted": ("def add(a, b):\n    return a + b\n\ndel add\n", "'add' is not defined"),
    "not_callable": ("add = 5\n", "not callable"),
    "syntax_error": ("def add(a, b)\n    return a + b\n", "SyntaxError"),
    "too_nested": ("(" * 100_000, "failed: "),
    "nul_byte": ("def add(a, b):\n    return a + b\x00\n", "failed: "),
    "crash_at_load": ("1 / 0\ndef add(a, b):\n    return a + b\n", "ZeroDivisionError"),
    "crash_at_call": ("def add(a, b):\n    raise RuntimeError('boom')\n", "RuntimeError"),
    "exit_at_load": ("raise SystemExit(0)\n", "failed: "),
    "wrong": ("def add(a, b):\n    return a - b\n", "wrong_answer"),
    "timeout": ("def add(a, b):\n    while True:\n        pass\n", "timed out"),
    "kills_its_sandbox_at_load": ("import os, signal\nos.kill(-1, signal.SIGKILL)\ndef add(a, b):\n    return a + b\n",
                                  "failed: "),
    "kills_its_sandbox_at_call": ("import os, signal\ndef add(a, b):\n    os.kill(-1, signal.SIGKILL)\n", "failed: "),
    "forges_the_unbound_marker": ("def add(a, b):\n    raise NameError('__passk_unbound__:add')\n", "'add' is not defined"),
}


def batch() -> tuple[list[str], list[bool], list[str]]:
    """Programs (honest and failing interleaved), whether each must pass, and what a failing one's
    result must contain ("passed" for an honest one)."""
    programs, passes, says = [], [], []
    honest, failing = list(HONEST.values()), list(FAILING.values())
    for i in range(max(len(honest), len(failing))):
        if i < len(failing):
            programs.append(failing[i][0])
            passes.append(False)
            says.append(failing[i][1])
        if i < len(honest):
            programs.append(honest[i])
            passes.append(True)
            says.append("passed")
    return programs, passes, says


def unbiased_pass_at_k(n: int, c: int, k: int) -> float:
    """1 - C(n - c, k) / C(n, k), in exact integers (Chen et al. 2021)."""
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)
