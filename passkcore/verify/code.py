"""Code samples: extract the program from a response, run it with the problem's tests in the sandbox."""

from __future__ import annotations

import re
from typing import Optional

from passkcore.verify.sandbox import bwrap_available, run_sandboxed
from passkcore.verify.verdict import Verdict

_BLOCK = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)(?:```|\Z)", re.S)


def verifier_name() -> str:
    return "sandbox:bwrap" if bwrap_available() else "sandbox:rlimits"


def extract_program(response: str, prompt: str, entry_point: str) -> Optional[str]:
    """The candidate program: the code block that defines ``entry_point`` (with the prompt's imports
    in front), else the prompt followed by the first block or the raw response as the function body."""
    blocks = _BLOCK.findall(response)
    header = "".join(line + "\n" for line in prompt.splitlines() if line.startswith(("import ", "from ")))
    for block in blocks:
        if re.search(rf"^\s*def\s+{re.escape(entry_point)}\s*\(", block, re.M):
            return header + block
    body = blocks[0] if blocks else response
    if not body.strip():
        return None
    if re.search(rf"^\s*def\s+{re.escape(entry_point)}\s*\(", body, re.M):
        return header + body
    return prompt + body


def check_code(program: str, tests: str, entry_point: str, *, timeout_s: float = 10.0, memory_mb: int = 1024) -> Verdict:
    """Runs ``program`` followed by ``tests`` and ``check(entry_point)`` (HumanEval's convention) in the
    sandbox. Never executes anything in the calling process."""
    for name, value in (("program", program), ("tests", tests), ("entry_point", entry_point)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string")
    if not entry_point.isidentifier():
        raise ValueError(f"entry_point must be a Python identifier, got {entry_point!r}")
    source = f"{program}\n\n{tests}\n\ncheck({entry_point})\n"
    result = run_sandboxed(source, timeout_s=timeout_s, memory_mb=memory_mb)
    reason = {"ok": "passed", "assertion": "wrong_answer", "memory": "memory", "timeout": "timeout"}.get(
        result.status, "crashed")
    detail = "" if reason == "passed" else f"{result.status} (exit {result.exit_code}): {result.stderr[-500:]}"
    return Verdict(reason == "passed", reason, None, verifier_name(), detail)
