from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from passkcore.bench import best_time


def own_time(benchmark: Any) -> float:
    """The fastest round pytest-benchmark measured for our side of the comparison."""
    if benchmark.disabled:
        pytest.skip("ratios need timings; run with benchmarks enabled (make bench)")
    return float(benchmark.stats.stats.min)


def peer_time(fn: Callable[[], Any], repeats: int = 5) -> float:
    """The peer's best of `repeats` runs, measured in the same process right after ours."""
    return best_time(fn, min_seconds=0.0, max_repeats=repeats)


RATIOS: list[tuple[str, dict[str, Any]]] = []


@pytest.fixture(autouse=True)
def _collect_ratios(request: pytest.FixtureRequest) -> Any:
    yield
    bench = request.node.funcargs.get("benchmark")
    if bench is not None and not bench.disabled and bench.extra_info:
        RATIOS.append((request.node.name, dict(bench.extra_info)))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not RATIOS:
        return
    terminalreporter.section("ratios against the peer tools (same run)")
    for name, info in RATIOS:
        cells = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items())
        terminalreporter.write_line(f"{name}: {cells}")
