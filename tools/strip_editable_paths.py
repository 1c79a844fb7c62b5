"""Keeps only the import hook in scikit-build-core's editable .pth file.

scikit-build-core's redirect-mode editable install also appends the source parents (the repository
root and its parent) to sys.path. That would make the top-level folders `kernels/`, `tests/` and
`benches/` importable as top-level modules, and transformers probes `importlib.util.find_spec("kernels")`
for an unrelated package of that name. The redirect finder it installs resolves `passkcore` and
`passkcore.kernels` on its own, so the path lines are not needed.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path


def main() -> None:
    for pth in Path(sysconfig.get_paths()["purelib"]).glob("_editable_skbc_passkcore*.pth"):
        lines = pth.read_text().splitlines(keepends=True)
        pth.write_text("".join(line for line in lines if line.startswith("import ")))


if __name__ == "__main__":
    main()
