"""The figures behind README's scale-out plan, measured on this machine.

    .venv/bin/python tools/measure_scaleout.py RUN      # RUN: a sampled run, e.g. runs/demo after `make demo`

Prints JSON: storage bytes per sample and per generated token; verification seconds per sample by
verifier, single-process and on a local 2-worker Ray cluster; Ray's cost per work item.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.compute as pc


def _fresh_copy(run: Path, into: Path) -> Path:
    out = into / f"run{time.monotonic_ns()}"
    shutil.copytree(run, out, ignore=shutil.ignore_patterns("verdicts", "scores", "report"))
    return out


def main(run: Path) -> dict[str, object]:
    from passkcore.pipeline import commands
    from passkcore.pipeline.executors import Cluster, connect
    from passkcore.pipeline.run import shard_files
    from passkcore.pipeline.store import SampleStore

    store = SampleStore(run)
    table = store.samples(columns=["model", "problem_id", "response_token_ids"])
    tokens = int(pc.sum(pc.list_value_length(table.column("response_token_ids"))).as_py())
    size = sum(p.stat().st_size for m in store.models for p in shard_files(store.root / "samples" / m))
    result: dict[str, object] = {"samples": table.num_rows, "response_tokens": tokens,
                                 "sample_bytes_per_row": size / table.num_rows, "sample_bytes_per_token": size / tokens}
    # One core per verifier, by kind: what a cluster needs in cores per sample/s.
    from passkcore.verify import verify_rows

    problems = {p.id: p for p in store.problems()}
    rows = store.samples(columns=["problem_id", "response"]).to_pylist()
    for kind in ("math", "code"):
        mine = [r for r in rows if problems[r["problem_id"]].kind == kind]
        if mine:
            start = time.perf_counter()
            verify_rows(mine, problems, workers=1)
            result[f"verify_{kind}_s_per_sample_1_core"] = (time.perf_counter() - start) / len(mine)
            result[f"verify_{kind}_samples"] = len(mine)
    with tempfile.TemporaryDirectory() as tmp:
        copy = _fresh_copy(run, Path(tmp))
        start = time.perf_counter()
        commands.verify(copy, workers=2)
        single = time.perf_counter() - start
        result["verify_single_process_2_workers_s"] = single

        cluster = Cluster(num_cpus=2, verify_workers=2)
        connect(cluster)
        copy = _fresh_copy(run, Path(tmp))
        _, stats = commands.verify(copy, cluster=cluster)
        result["verify_ray_2_workers"] = stats.as_dict()
        # Counts are an Arrow group-by on the driver (no cluster), over this many shards.
        count_items = len([p for k in ("samples", "verdicts") for m in SampleStore(copy).models
                           for p in shard_files(copy / k / m)])
        start = time.perf_counter()
        commands.write_counts(copy, Path(tmp) / "counts.parquet")
        result["counts_shards"] = count_items
        result["counts_s"] = time.perf_counter() - start
    return result


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1])), indent=2))
