"""passkcore.integrations.verl: exact against brute-force enumeration of the k-subsets, verl's contract
(signature, keys, expected_acc_counts policy), and against verl's own bootstrap where verl is installed."""

from __future__ import annotations

import inspect
import itertools
import math
from collections import Counter

import numpy as np
import pytest

from passkcore.integrations import verl as pv


def brute(values: list[float], preds: list | None, k: int) -> dict[str, float]:
    """Every k-subset, equally likely: mean and population std of max, min and the winning class's value."""
    best, worst, maj = [], [], []
    for idx in itertools.combinations(range(len(values)), k):
        sub = [values[i] for i in idx]
        best.append(max(sub))
        worst.append(min(sub))
        if preds is not None:
            votes = Counter(preds[i] for i in idx if preds[i] is not None)
            if not votes:
                maj.append(0.0)
                continue
            top = max(votes.values())
            winners = [p for p, c in votes.items() if c == top]
            # A class's value: the mean over all of the prompt's samples in that class; ties split evenly.
            cls = {p: np.mean([v for v, q in zip(values, preds) if q == p]) for p in winners}
            maj.append(float(np.mean([cls[p] for p in winners])))
    out = {"best/mean": np.mean(best), "best/std": np.std(best), "worst/mean": np.mean(worst), "worst/std": np.std(worst)}
    if preds is not None:
        # std of a tie-split value: the split is an average of outcomes, so E[X^2] uses each winner's share.
        second = []
        for idx in itertools.combinations(range(len(values)), k):
            votes = Counter(preds[i] for i in idx if preds[i] is not None)
            if not votes:
                second.append(0.0)
                continue
            top = max(votes.values())
            winners = [p for p, c in votes.items() if c == top]
            cls = {p: np.mean([v for v, q in zip(values, preds) if q == p]) for p in winners}
            second.append(float(np.mean([cls[p] ** 2 for p in winners])))
        mean = np.mean(maj)
        out["maj/mean"] = mean
        out["maj/std"] = math.sqrt(max(np.mean(second) - mean * mean, 0.0))
    return out


def test_signature_is_verls() -> None:
    params = list(inspect.signature(pv.process_validation_metrics).parameters.values())
    assert [p.name for p in params] == ["data_sources", "sample_uids", "infos_dict", "seed", "expected_acc_counts"]
    assert params[3].default == 42 and params[4].default is None


def test_k_ladder() -> None:
    assert pv.k_ladder(1) == [] and pv.k_ladder(2) == [2] and pv.k_ladder(5) == [2, 4, 5]
    assert pv.k_ladder(16) == [2, 4, 8, 16] and pv.k_ladder(17) == [2, 4, 8, 16, 17]


def test_one_correct_of_four_is_best_at_4_equal_1() -> None:
    out = pv.process_validation_metrics(["s"] * 4, ["u"] * 4, {"acc": [1.0, 0.0, 0.0, 0.0]})
    m = out["s"]["acc"]
    assert m["best@4/mean"] == 1.0 and m["best@4/std"] == 0.0
    assert m["best@2/mean"] == pytest.approx(0.5)  # pass@2 with c=1, n=4: 1 - C(3,2)/C(4,2)
    assert m["worst@2/mean"] == 0.0 and m["mean@4"] == 0.25 and m["std@4"] == pytest.approx(math.sqrt(0.1875))


@pytest.mark.parametrize("seed", range(12))
def test_matches_enumeration(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 9))
    values = rng.choice([0.0, 0.5, 1.0, -2.0, 3.25], size=n).tolist() if seed % 2 else rng.normal(size=n).tolist()
    preds = [None if rng.random() < 0.2 else str(rng.integers(0, 3)) for _ in range(n)]
    out = pv.process_validation_metrics(["d"] * n, ["p"] * n, {"score": values, "pred": preds})
    m = out["d"]["score"]
    assert set(out["d"]) == {"score"}  # pred is text: skipped as a variable, used for the vote
    assert m[f"mean@{n}"] == pytest.approx(np.mean(values), abs=1e-12)
    for k in pv.k_ladder(n):
        want = brute(values, preds, k)
        for name, value in want.items():
            stat, kind = name.split("/")
            assert m[f"{stat}@{k}/{kind}"] == pytest.approx(value, abs=1e-9), (k, name)


def test_averages_over_prompts_per_source_and_keys_by_n() -> None:
    sources = ["a"] * 6 + ["b"] * 2
    uids = ["x"] * 3 + ["y"] * 3 + ["x"] * 2  # uid x in two sources: two prompts
    acc = [1, 0, 0, 1, 1, 0, 0, 1]
    out = pv.process_validation_metrics(sources, uids, {"acc": acc})
    assert list(out) == ["a", "b"]
    a = out["a"]["acc"]
    assert a["best@2/mean"] == pytest.approx((1 - 1 / 3 + 1.0) / 2)  # pass@2: c=1 and c=2 of n=3
    assert a["mean@3"] == pytest.approx(0.5)
    assert out["b"]["acc"] == pytest.approx({"mean@2": 0.5, "std@2": 0.5, "best@2/mean": 1.0, "best@2/std": 0.0,
                                             "worst@2/mean": 0.0, "worst@2/std": 0.0})


def test_unequal_n_in_a_source_and_none_values() -> None:
    out = pv.process_validation_metrics(["s"] * 5, ["u", "u", "v", "v", "v"], {"r": [1.0, None, 0.0, 2.0, 1.0]})
    m = out["s"]["r"]
    assert m["mean@1"] == 1.0 and "std@1" not in m  # prompt u has one value left: verl drops None
    assert m["mean@3"] == 1.0 and m["best@3/mean"] == 2.0 and m["best@2/mean"] == pytest.approx(5 / 3)


def test_all_abstaining_is_zero_and_ties_split() -> None:
    out = pv.process_validation_metrics(["s"] * 2, ["u"] * 2, {"acc": [1.0, 0.0], "pred": ["a", "b"]})
    assert out["s"]["acc"]["maj@2/mean"] == 0.5 and out["s"]["acc"]["maj@2/std"] == 0.5
    out = pv.process_validation_metrics(["s"] * 2, ["u"] * 2, {"acc": [1.0, 1.0], "pred": [None, None]})
    assert out["s"]["acc"]["maj@2/mean"] == 0.0


def test_expected_acc_counts_policy() -> None:
    infos = {"acc": [1.0, 1.0, None], "reward": [0.5, 0.7, 0.1]}
    out = pv.process_validation_metrics(["m"] * 3 + ["r"], ["u"] * 3 + ["w"], {**{k: v + [None] for k, v in infos.items()},
                                        "reward": infos["reward"] + [0.3]},
                                        expected_acc_counts={("m", "u"): 4, ("m", "new"): 2, ("r", "w"): 5})
    acc = out["m"]["acc"]
    # Prompt u: observed acc 1, 1 plus two missing -> [1, 1, 0, 0]; prompt "new": [0, 0].
    assert acc["mean@4"] == 0.5 and acc["best@4/mean"] == 1.0 and acc["mean@2"] == 0.0
    # best@2 is averaged over both prompts, as verl does: pass@2 of c=2, n=4 and of c=0, n=2.
    assert acc["best@2/mean"] == pytest.approx((1 - 1 / 6 + 0.0) / 2)
    assert out["m"]["acc_success_only"]["mean@2"] == 1.0
    assert "acc" not in out["r"]  # a source without acc never gets a synthetic one
    assert out["m"]["reward"]["mean@3"] == pytest.approx(0.4333333333333)


@pytest.mark.parametrize("bad, match", [
    ({"data_sources": ["a"], "sample_uids": ["u", "v"], "infos_dict": {"acc": [1]}}, "sample_uids has 2"),
    ({"data_sources": ["a"], "sample_uids": ["u"], "infos_dict": {"acc": [1, 2]}}, r"infos_dict\['acc'\] has 2"),
    ({"data_sources": ["a"], "sample_uids": ["u"], "infos_dict": {"acc": [float("nan")]}}, r"infos_dict\['acc'\]\[0\] is nan"),
    ({"data_sources": ["a", "a"], "sample_uids": ["u", "u"], "infos_dict": {"acc": [1, "x"]}}, "mixes text and numbers"),
    ({"data_sources": ["a"], "sample_uids": [["u"]], "infos_dict": {"acc": [1]}}, r"sample_uids\[0\] must be hashable"),
    ({"data_sources": ["a"], "sample_uids": ["u"], "infos_dict": {"acc": [1], "pred": [["x"]]}}, r"infos_dict\['pred'\]\[0\]"),
    ({"data_sources": ["a"], "sample_uids": ["u"], "infos_dict": {"acc": [{}]}}, r"infos_dict\['acc'\]\[0\] must be a number"),
    ({"data_sources": ["a"], "sample_uids": ["u"], "infos_dict": {"acc": [1]}, "expected_acc_counts": {("a", "u"): -1}},
     "non-negative int"),
])
def test_bad_input_is_a_value_error(bad: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        pv.process_validation_metrics(**bad)




def test_uid_and_source_types_as_verl_gets_them() -> None:
    # The trainer passes data_sources as a numpy array; uids may be ints, or mixed (grouped as a dict would).
    sources = np.array(["a", "a", "a", "a"])
    for uids in ([1, 1, 2, 2], ["x", "x", 7, 7], [1.0, 1, 2, 2.0]):
        out = pv.process_validation_metrics(sources, uids, {"acc": [1, 0, 0, 0]})
        assert out["a"]["acc"]["best@2/mean"] == 0.5 and out["a"]["acc"]["mean@2"] == 0.25
    assert pv.process_validation_metrics([], [], {"acc": []}) == {}


def test_booleans_and_ints_are_numbers_and_text_variables_are_skipped() -> None:
    out = pv.process_validation_metrics(["s"] * 3, ["u"] * 3, {"acc": [True, False, True], "note": ["a", None, "c"]})
    assert set(out["s"]) == {"acc"} and out["s"]["acc"]["mean@3"] == pytest.approx(2 / 3)
