"""Engines stay quiet unless --verbose: the environment and logger levels. The end-to-end check (a real
vLLM run prints no engine lines, and does with --verbose) rides on tests/test_sampling.py's engine runs."""

from __future__ import annotations

import logging
import os
import warnings

import pytest

from passkcore.quiet import ENGINE_WARNINGS, QUIET_ENV, quiet_engines


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [*QUIET_ENV, "PYTHONWARNINGS"]:
        monkeypatch.delenv(name, raising=False)
    for name in ("vllm", "ray", "triton"):
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    return monkeypatch


def test_quiet_sets_defaults_and_keeps_a_users_own(clean_env: pytest.MonkeyPatch) -> None:
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
    assert quiet_engines(verbose=True) == {}
    assert not any(name in os.environ for name in QUIET_ENV) and logging.getLogger("vllm").level == logging.NOTSET
    assert ENGINE_WARNINGS  # the filters are named, each with its reason, in passkcore/quiet.py
