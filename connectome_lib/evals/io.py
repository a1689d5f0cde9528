"""Small readers for the evaluation data files (JSON lines, optionally xz-compressed)."""

from __future__ import annotations

import json
import lzma
import os
from pathlib import Path
from typing import Any, Iterator


def iter_jsonl(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Yield the records of a ``.jsonl`` or ``.jsonl.xz`` file."""
    path = Path(path)
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def read_jsonl(path: str | os.PathLike, limit: int | None = None) -> list[dict[str, Any]]:
    """The first ``limit`` records (all when ``None``)."""
    out = []
    for rec in iter_jsonl(path):
        if limit is not None and len(out) >= limit:
            break
        out.append(rec)
    return out
