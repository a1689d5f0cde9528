"""Small readers for JSON-lines data files (plain, ``.xz`` or ``.gz`` compressed).

A bad file is a :class:`DataFileError` whose one-line message names the file and, for a
malformed record, its 1-based line number -- never a bare ``JSONDecodeError``, ``EOFError`` or
``LZMAError`` from deep inside a reader.
"""

from __future__ import annotations

import gzip
import json
import lzma
import os
import zlib
from pathlib import Path
from typing import Any, Iterator


class DataFileError(ValueError):
    """A data file is empty, truncated, corrupt, or holds a malformed line."""


#: what the decompressors raise on a cut-off or damaged stream (``gzip.BadGzipFile`` is an OSError)
_STREAM_ERRORS = (EOFError, lzma.LZMAError, zlib.error, gzip.BadGzipFile)


def _open_text(path: Path):
    if path.suffix == ".xz":
        return lzma.open(path, "rt", encoding="utf-8")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _stream_error(path: Path, line: int, e: BaseException) -> DataFileError:
    if path.exists() and path.stat().st_size == 0:
        return DataFileError(f"{path} is empty (0 bytes); replace it with a complete copy")
    detail = " ".join(str(e).split()) or type(e).__name__
    after = f", after line {line}" if line else ""
    return DataFileError(
        f"{path} is truncated or corrupt ({type(e).__name__}: {detail}{after}); replace it with a complete copy"
    )


def iter_jsonl(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Yield the records (JSON objects) of a ``.jsonl``, ``.jsonl.xz`` or ``.jsonl.gz`` file.

    Blank lines are skipped. Raises :class:`DataFileError` naming the file (and the 1-based line)
    for a malformed line, a line that is not a JSON object, or a truncated/corrupt file.
    """
    path = Path(path)
    lineno = 0
    try:
        with _open_text(path) as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataFileError(f"{path}, line {lineno}: malformed JSON ({e.msg}, column {e.colno})") from None
                if not isinstance(rec, dict):
                    raise DataFileError(f"{path}, line {lineno}: expected a JSON object, got {type(rec).__name__}")
                yield rec
    except UnicodeDecodeError as e:
        raise DataFileError(f"{path}, line {lineno + 1}: not UTF-8 text ({e.reason})") from None
    except _STREAM_ERRORS as e:
        raise _stream_error(path, lineno, e) from None


def check_jsonl(path: str | os.PathLike, field: str | None = None) -> int:
    """Read a whole JSON-lines file and return its number of records.

    Raises :class:`DataFileError` (see :func:`iter_jsonl`); also when the file holds no records,
    or when a record lacks ``field`` (reported with its line number).
    """
    path = Path(path)
    n = 0
    for n, rec in enumerate(iter_jsonl(path), start=1):
        if field is not None and field not in rec:
            raise DataFileError(f"{path}: record {n} has no field {field!r} (fields: {sorted(rec)})")
    if n == 0:
        size = path.stat().st_size
        raise DataFileError(f"{path} is empty (0 bytes)" if size == 0 else f"{path} holds no records")
    return n


def read_jsonl(path: str | os.PathLike, limit: int | None = None) -> list[dict[str, Any]]:
    """The first ``limit`` records (all when ``None``)."""
    out = []
    for rec in iter_jsonl(path):
        if limit is not None and len(out) >= limit:
            break
        out.append(rec)
    return out
