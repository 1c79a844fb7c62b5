"""Writes data/synthetic_rl_series.csv: seeded synthetic counts for a second benchmark with a
checkpoint series (base, rl-step100, rl-step200, rl-step300), n = 64 samples over 400 problems.

Not measured data: a model of what the RLVR paper reports. Each problem has a difficulty logit
z ~ N(0.4, 2.4); the base solves a sample with probability sigmoid(z); a checkpoint at step s
(t = s / 300) sharpens it to sigmoid(z (1 + 1.5 t) + 1.2 t), which raises pass@1 and pushes the
hardest problems towards never solved. Counts are binomial draws. Run:
``python tools/synthetic_series.py [OUT.csv]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SEED, PROBLEMS, N = 17, 400, 64
STEPS = (0, 100, 200, 300)


def counts() -> list[tuple[str, str, int, int]]:
    rng = np.random.default_rng(SEED)
    z = rng.normal(0.4, 2.4, PROBLEMS)
    rows = []
    for step in STEPS:
        t = step / 300
        p = 1.0 / (1.0 + np.exp(-(z * (1 + 1.5 * t) + 1.2 * t)))
        c = rng.binomial(N, p)
        label = "base" if step == 0 else f"rl-step{step}"
        rows += [(f"s{i:03d}", label, N, int(c[i])) for i in range(PROBLEMS)]
    return rows


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "data" / "synthetic_rl_series.csv"
    out.write_text("problem_id,model,n,c\n" + "".join(f"{p},{m},{n},{c}\n" for p, m, n, c in counts()))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
