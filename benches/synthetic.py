"""Synthetic runs at scale, written with pyarrow directly (a million samples in seconds): P problems
x N samples, 16-token prompts and ``tokens``-token responses, in shards of ``shard_rows`` rows, with
verdicts (every third sample correct) and optionally scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from passkcore.pipeline.run import SAMPLE_SCHEMA, SCORE_SCHEMA, VERDICT_SCHEMA, write_shard
from passkcore.pipeline.store import SampleStore
from passkcore.problems import arithmetic


def _lists(rows: int, width: int, rng: np.random.Generator) -> pa.Array:
    values = pa.array(rng.integers(0, 49152, rows * width, dtype=np.int32))
    offsets = pa.array(np.arange(0, rows * width + 1, width, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, values)


def make_run(root: Path, problems: int = 1000, samples: int = 1000, *, tokens: int = 32, shard_rows: int = 1000,
             verdicts: bool = True, scores_except: int = -1, model: str = "m") -> SampleStore:
    """A run of problems x samples for one model. ``scores_except`` >= 0: every sample but the last
    ``scores_except`` also has a score under scorer label ``smollm2-135m``."""
    store = SampleStore.open_run(root, arithmetic(problems, seed=0), {"spec": "synthetic"})
    store.register_model(model, {"model": "synthetic", "n": samples})
    rng = np.random.default_rng(0)
    pids = np.repeat(np.array([p.id for p in store.problems()], dtype=object), samples)
    idx = np.tile(np.arange(samples, dtype=np.int32), problems)
    total = problems * samples
    for s, start in enumerate(range(0, total, shard_rows)):
        stop = min(total, start + shard_rows)
        rows = stop - start
        key = {"model": pa.array([model] * rows), "problem_id": pa.array(pids[start:stop], pa.string()),
               "sample_index": pa.array(idx[start:stop])}
        table = pa.table({**key, "seed": pa.array(np.zeros(rows, np.int64)), "prompt_token_ids": _lists(rows, 16, rng),
                          "response_token_ids": _lists(rows, tokens, rng),
                          "response": pa.array(["\\boxed{1}"] * rows), "finish_reason": pa.array(["stop"] * rows),
                          "cumulative_logprob": pa.array(np.full(rows, -1.0)),
                          "correct": pa.nulls(rows, pa.bool_()), "extracted_answer": pa.nulls(rows, pa.string()),
                          "verifier": pa.nulls(rows, pa.string()),
                          "image_digest": pa.nulls(rows, pa.string())}, schema=SAMPLE_SCHEMA)
        write_shard(table, store.folder("samples", model), f"s{s:06d}")
        if verdicts:
            cols = {f.name: pa.nulls(rows, f.type) for f in VERDICT_SCHEMA if f.name not in key}
            cols["correct"] = pa.array(idx[start:stop] % 3 == 0)
            cols["reason"] = pa.array(np.where(idx[start:stop] % 3 == 0, "passed", "wrong_answer"))
            write_shard(pa.table({**key, **cols}, schema=VERDICT_SCHEMA), store.folder("verdicts", model), f"v{s:06d}")
        keep = min(rows, max(0, total - scores_except - start)) if scores_except >= 0 else 0
        if keep:
            cols = {"scorer": pa.array(["smollm2-135m"] * keep), "num_tokens": pa.array(np.full(keep, tokens)),
                    **{c: pa.array(np.full(keep, -1.0)) for c in ("sum_logprob", "mean_logprob", "ppl", "mean_entropy")},
                    "status": pa.array(["ok"] * keep)}
            table = pa.table({**{k: v.slice(0, keep) for k, v in key.items()}, **cols})
            write_shard(table.select(SCORE_SCHEMA.names).cast(SCORE_SCHEMA), store.folder("scores", "smollm2-135m"),
                        f"c{s:06d}")
    return SampleStore(root)
