"""``passk estimate --metric ... --forecast K``: the JSON shape, extended but not changed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from passkcore import maj_at_k, pass_hat_k_curve
from passkcore.cli import main
from passkcore.cli.numbers import parse_metrics
from passkcore.pipeline.store import SampleStore
from tests.conftest import MATH500

DATA = MATH500


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_count_file_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    plain = _run(["estimate", str(DATA), "--k", "1,8", "--json"], capsys)
    out = _run(["estimate", str(DATA), "--k", "1,8", "--json", "--metric", "pass@k,pass^k,g-pass@k,bayes,cover",
                "--tau", "0.5,1.0", "--forecast", "256", "--forecast-resamples", "20"], capsys)
    assert out["k"] == plain["k"] == [1, 8]
    for name, m in out["models"].items():
        for key in ("pass_at_k", "stderr", "problems"):
            assert m[key] == plain["models"][name][key]
        assert set(m) == {"pass_at_k", "stderr", "problems", "pass_hat_k", "g_pass_at_k", "mg_pass_at_k", "bayes",
                          "cover", "forecast"}
        assert list(m["g_pass_at_k"]) == ["0.5", "1.0"] and len(m["mg_pass_at_k"]) == 2
        assert m["g_pass_at_k"]["1.0"] == pytest.approx(m["pass_hat_k"], rel=1e-12)
        assert set(m["bayes"]) == {"mean", "low", "high"} and len(m["bayes"]["mean"]) == 2
        assert m["cover"]["tau"] == [0.5, 1.0] and len(m["cover"]["value"]) == 2
        f = m["forecast"]
        assert f["k"] == 256 and f["low"] <= f["value"] <= f["high"]


def test_maj_needs_a_run_directory(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", str(DATA), "--metric", "maj@k", "--json"]) == 2
    assert "maj@k needs each sample's answer class" in capsys.readouterr().err


def test_unknown_metric() -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        parse_metrics(["pass@k", "top@k"])


def _store(root: Path, keys: dict[str, list[tuple[bool, str | None]]]) -> None:
    store = SampleStore.create(root, {"spec": "t"})
    rows, verdicts = [], []
    for pid, samples in keys.items():
        for i, (ok, key) in enumerate(samples):
            base = {"model": "m", "problem_id": pid, "sample_index": i}
            rows.append({**base, "seed": 1, "prompt_token_ids": [1], "response_token_ids": [2], "response": "x",
                         "finish_reason": "stop", "cumulative_logprob": -1.0})
            verdicts.append({**base, "correct": ok, "extracted_answer": key, "verifier": "t", "reason": "r", "answer_key": key})
    store.write_samples(rows)
    store.write_verdicts(verdicts)


def test_maj_from_a_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _store(tmp_path, {"p1": [(True, "4"), (False, "5"), (False, "5"), (True, "4"), (False, None)],
                      "p2": [(False, "1"), (False, "2"), (True, "3"), (False, "1"), (False, "1")]})
    out = _run(["estimate", str(tmp_path), "--k", "1,3,5", "--metric", "maj@k,pass^k", "--json"], capsys)
    m = out["models"]["m"]
    expect = maj_at_k([[2, 2], [1, 3, 1]], [0, 0], [1, 3, 5], abstain=[1, 0]).mean(axis=0)
    np.testing.assert_allclose(m["maj_at_k"], expect, rtol=1e-14)
    assert m["pass_hat_k"] == pytest.approx(pass_hat_k_curve([5, 5], [2, 1], [1, 3, 5]).values.tolist())


def test_maj_without_answer_keys_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _store(tmp_path, {"p1": [(True, None), (False, None), (False, None)]})
    assert main(["estimate", str(tmp_path), "--k", "1", "--metric", "maj@k"]) == 2
    assert "carry no answer_key" in capsys.readouterr().err


def test_text_output_prints_each_metric(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", str(DATA), "--k", "1,4", "--metric", "pass^k,g-pass@k,bayes,cover", "--tau", "0.5"]) == 0
    text = capsys.readouterr().out
    for title in ("pass^k", "G-pass@k, tau = 0.5", "mG-pass@k", "Bayes@N", "cover@tau"):
        assert title in text
