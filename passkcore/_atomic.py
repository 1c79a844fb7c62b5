"""Files written whole or not at all: a temporary sibling, then a rename (atomic on POSIX), so a
process killed mid-write never leaves a half-written file under the real name."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Union


def write_atomically(path: Union[str, Path], write: Callable[[Path], object]) -> Path:
    """Calls ``write(tmp)`` for a dot-prefixed temporary sibling of ``path``, then renames it.

    The temporary name is unique per call: two workers writing the same shard at once (a task retried
    while its first attempt still runs) each finish their own file, and the last rename wins whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_text_atomically(path: Union[str, Path], text: str) -> Path:
    return write_atomically(path, lambda tmp: tmp.write_text(text))
