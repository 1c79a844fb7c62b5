"""Importing a 1,000,000-line generic samples JSONL: peak RSS of `passk import` against the 1 GiB bound."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benches.conftest import measure_child

LINES = 1_000_000
PROBLEMS = 1_000
BOUND = 1 << 30  # bytes


def write_samples(path: Path, lines: int = LINES, problems: int = PROBLEMS) -> None:
    """``lines`` samples over ``problems`` problems, ~150-character responses, verdicts given."""
    per = lines // problems
    with path.open("w") as fh:
        for p in range(problems):
            prompt = f"Problem {p}: what is {p} + {p}? Put the answer in a box."
            for i in range(per):
                fh.write(json.dumps({"problem_id": f"p{p}", "model": "big", "sample_index": i, "prompt": prompt,
                                     "response": f"We add {p} and {p} step by step; the sum is \\boxed{{{2 * p + i % 3}}}. "
                                                 "That is the final answer to the question.",
                                     "correct": i % 3 == 0}) + "\n")


def import_peak_rss(source: Path, out: Path) -> tuple[int, float]:
    """Peak RSS (bytes, the child's VmHWM) and wall seconds of `passk import samples SOURCE --out OUT`."""
    got = measure_child("from passkcore.cli import main\n"
                        "assert main(['import', 'samples', sys.argv[1], '--out', sys.argv[2]]) == 0", str(source), str(out))
    return int(got["rss"]), float(got["s"])


@pytest.mark.slow
def test_million_line_import_peak_rss(benchmark: Any, tmp_path: Path) -> None:
    source = tmp_path / "samples.jsonl"
    write_samples(source)
    result: dict[str, Any] = {}

    def run() -> None:
        out = tmp_path / f"run{len(result)}"
        result["rss"], result["seconds"] = import_peak_rss(source, out)
        result["out"] = out

    benchmark.pedantic(run, rounds=1, iterations=1)
    from passkcore.pipeline.store import SampleStore

    counts = SampleStore(result["out"]).counts()
    assert counts.num_rows == PROBLEMS and sum(counts.column("n").to_pylist()) == LINES
    assert sum(counts.column("c").to_pylist()) == PROBLEMS * len(range(0, LINES // PROBLEMS, 3))
    ratio = result["rss"] / BOUND
    benchmark.extra_info.update(peak_rss_mib=result["rss"] / 2**20, seconds=result["seconds"], ratio_to_1gib=ratio)
    assert ratio < 1, f"peak RSS {result['rss'] / 2**20:.0f} MiB"
