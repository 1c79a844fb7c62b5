"""passkcore.integrations.verl against verl's own metric_utils (verl 0.9.1, installed --no-deps by make install)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import verl.trainer.ppo.metric_utils as metric_utils

from passkcore.integrations import verl as pv


def with_replacement_best(values: list[float], k: int) -> float:
    """What verl's bootstrap estimates for best@k: E[max of k draws *with* replacement], exactly."""
    v = sorted(values)
    n = len(v)
    return sum(x * ((j + 1) ** k - j**k) / n**k for j, x in enumerate(v))


def make_run(prompts: int, n: int, seed: int) -> tuple[list[str], list[str], dict[str, list]]:
    rng = np.random.default_rng(seed)
    sources = [("gsm8k" if p % 3 else "math") for p in range(prompts) for _ in range(n)]
    uids = [f"u{p}" for p in range(prompts) for _ in range(n)]
    p_correct = np.repeat(rng.random(prompts), n)
    acc = (rng.random(prompts * n) < p_correct).astype(float)
    pred = ["42" if a else str(int(rng.integers(0, 3))) for a in acc]
    score = (acc + rng.normal(0, 0.2, acc.size)).tolist()
    return sources, uids, {"acc": acc.tolist(), "score": score, "pred": pred}


def test_same_keys_and_values_within_bootstrap_noise() -> None:
    sources, uids, infos = make_run(12, 8, 0)
    theirs = metric_utils.process_validation_metrics(sources, uids, infos)
    ours = pv.process_validation_metrics(sources, uids, infos)
    assert list(ours) == list(theirs)
    for src in theirs:
        assert list(ours[src]) == list(theirs[src])
        for var in theirs[src]:
            assert set(ours[src][var]) == set(theirs[src][var]), (src, var)
            for name, value in theirs[src][var].items():
                k = int(name.split("@")[1].split("/")[0])
                # verl draws k of n with replacement, 1,000 times: its error is at most 0.5/sqrt(1000) per
                # prompt for a [0,1] value (x the value range for score), plus the with-replacement bias,
                # at most P(some draw repeats) = 1 - n!/((n-k)! n^k) times the range.
                spread = 1.0 if var == "acc" else max(infos["score"]) - min(infos["score"])
                repeat = 1.0 - math.prod((8 - i) / 8 for i in range(k)) if "@" in name and "/" in name else 0.0
                tol = spread * (4 * 0.5 / math.sqrt(1000) + repeat) + 1e-9
                assert ours[src][var][name] == pytest.approx(value, abs=tol), (src, var, name)


def test_verl_estimates_the_with_replacement_value_we_do_not() -> None:
    # One correct of four: verl reads best@4 ~ 0.684 (with replacement: 1 - (3/4)^4); the exact value is 1.
    theirs = metric_utils.process_validation_metrics(["s"] * 4, ["u"] * 4, {"acc": [1.0, 0.0, 0.0, 0.0]})
    ours = pv.process_validation_metrics(["s"] * 4, ["u"] * 4, {"acc": [1.0, 0.0, 0.0, 0.0]})
    assert theirs["s"]["acc"]["best@4/mean"] == pytest.approx(with_replacement_best([1, 0, 0, 0], 4), abs=0.05)
    assert ours["s"]["acc"]["best@4/mean"] == 1.0


def test_expected_acc_counts_keys_match_verl() -> None:
    sources, uids, infos = make_run(4, 4, 1)
    expected = dict.fromkeys(set(zip(sources, uids)), 6)
    theirs = metric_utils.process_validation_metrics(sources, uids, infos, expected_acc_counts=expected)
    ours = pv.process_validation_metrics(sources, uids, infos, expected_acc_counts=expected)
    for src in theirs:
        assert set(ours[src]) == set(theirs[src])
        # verl skips maj@k for acc once padded (pred no longer lines up); padded responses abstain here.
        assert set(theirs[src]["acc"]) <= set(ours[src]["acc"])
        assert ours[src]["acc"]["mean@6"] == pytest.approx(theirs[src]["acc"]["mean@6"])


def test_install_replaces_verls_function_and_uninstall_restores_it() -> None:
    original = metric_utils.process_validation_metrics
    try:
        patched = pv.install()
        assert "verl.trainer.ppo.metric_utils" in patched
        assert metric_utils.process_validation_metrics is pv.process_validation_metrics
        assert pv.install() == patched  # idempotent
    finally:
        pv.uninstall()
    assert metric_utils.process_validation_metrics is original


def test_brute_force_agrees_with_exact_on_a_verl_style_batch() -> None:
    sources, uids, infos = make_run(3, 6, 2)
    ours = pv.process_validation_metrics(sources, uids, infos)
    # Per prompt, enumerate the C(6, 4) subsets of acc directly; average per source.
    per_source: dict[str, list[float]] = {}
    for p in range(3):
        vals = infos["acc"][p * 6:(p + 1) * 6]
        best = np.mean([max(s) for s in itertools.combinations(vals, 4)])
        per_source.setdefault(sources[p * 6], []).append(best)
    for src, vals in per_source.items():
        assert ours[src]["acc"]["best@4/mean"] == pytest.approx(np.mean(vals), abs=1e-12)
