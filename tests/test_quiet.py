"""Engines stay quiet unless --verbose: the environment and logger levels, then a real vLLM run."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from passkcore.quiet import ENGINE_WARNINGS, QUIET_ENV, quiet_engines

# vLLM's line prefix, "(EngineCore pid=123) INFO 11-22 04:03:39 [core.py:133] ...", or without the process.
ENGINE_LINE = re.compile(r"^(\(\w+ pid=\d+\) )?(INFO|WARNING|DEBUG) \d\d-\d\d \d\d:\d\d:\d\d \[", re.M)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [*QUIET_ENV, "PYTHONWARNINGS"]:
        monkeypatch.delenv(name, raising=False)
    for name in ("vllm", "ray", "triton"):
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    return monkeypatch


def test_quiet_sets_defaults_and_keeps_a_users_own(clean_env: pytest.MonkeyPatch) -> None:
    import os

    clean_env.setenv("VLLM_LOGGING_LEVEL", "DEBUG")
    with warnings.catch_warnings():
        set_now = quiet_engines(verbose=False)
        assert "VLLM_LOGGING_LEVEL" not in set_now and os.environ["VLLM_LOGGING_LEVEL"] == "DEBUG"
        assert os.environ["TQDM_DISABLE"] == "1" and os.environ["TORCH_CPP_LOG_LEVEL"] == "ERROR"
        assert "ignore:resource_tracker:UserWarning" in os.environ["PYTHONWARNINGS"]
        assert logging.getLogger("vllm").level == logging.ERROR
        assert logging.getLogger("transformers").getEffectiveLevel() <= logging.WARNING  # its warnings still show
        with pytest.warns(UserWarning, match="passkcore's own"):
            warnings.warn("passkcore's own warning", UserWarning, stacklevel=1)
        again = quiet_engines(verbose=False)
        assert "PYTHONWARNINGS" not in again  # idempotent: the filters are not appended twice


def test_verbose_sets_nothing(clean_env: pytest.MonkeyPatch) -> None:
    import os

    assert quiet_engines(verbose=True) == {}
    assert not any(name in os.environ for name in QUIET_ENV) and logging.getLogger("vllm").level == logging.NOTSET
    assert ENGINE_WARNINGS  # the filters are named, each with its reason, in passkcore/quiet.py


def _sample(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "passkcore.cli", "sample", "--problems", "arith:2", "--n", "1", "--max-tokens", "8",
           "--out", str(out), *extra]
    # Earlier tests in this process may have run a command quietly: its settings are in os.environ.
    env = {k: v for k, v in os.environ.items() if k not in QUIET_ENV and k != "PYTHONWARNINGS"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)


@pytest.mark.slow
def test_sampling_prints_no_engine_lines_unless_verbose(tmp_path: Path) -> None:
    quiet = _sample(tmp_path / "quiet")
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    both = quiet.stdout + quiet.stderr
    assert not ENGINE_LINE.search(both), ENGINE_LINE.search(both)
    assert "Loading safetensors" not in both and f"samples stored in {tmp_path / 'quiet'}" in quiet.stdout
    loud = _sample(tmp_path / "loud", "--verbose")
    assert loud.returncode == 0, loud.stderr[-3000:]
    assert re.search(r"\) INFO \d\d-\d\d", loud.stdout + loud.stderr)  # the check above can fail
