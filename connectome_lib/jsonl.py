"""Small readers for data files: JSON lines (plain, ``.xz`` or ``.gz`` compressed) and CSV tables.

A bad file is a :class:`DataFileError` whose one-line message names the file and, for a bad
record, its 1-based line number (``<file>:<line>: <what is wrong>; <what to do>``) -- never a
bare ``JSONDecodeError``, ``UnicodeDecodeError``, ``EOFError``, ``LZMAError`` or pandas
``ParserError`` from deep inside a reader.
"""

from __future__ import annotations

import gzip
import json
import lzma
import os
import re
import zlib
from pathlib import Path
from typing import Any, Iterable, Iterator


class DataFileError(ValueError):
    """A data file is empty, truncated, corrupt, or holds a malformed line."""


#: what the decompressors raise on a cut-off or damaged stream (``gzip.BadGzipFile`` is an OSError)
_STREAM_ERRORS = (EOFError, lzma.LZMAError, zlib.error, gzip.BadGzipFile)
#: the characters ``errors="surrogateescape"`` decodes an invalid UTF-8 byte to (and only those)
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
REPLACE = "replace it with a complete copy"


def _open_text(path: Path):
    """``path`` as text; an invalid UTF-8 byte is kept as a surrogate, so that it is reported
    with the line it is on (a strict decoder fails on the block it reads, lines later)."""
    text = {"encoding": "utf-8", "errors": "surrogateescape"}
    if path.suffix == ".xz":
        return lzma.open(path, "rt", **text)
    if path.suffix == ".gz":
        return gzip.open(path, "rt", **text)
    return open(path, **text)


def _stream_error(path: Path, line: int, e: BaseException) -> DataFileError:
    if path.exists() and path.stat().st_size == 0:
        return DataFileError(f"{path} is empty (0 bytes); {REPLACE}")
    detail = " ".join(str(e).split()) or type(e).__name__
    after = f", after line {line}" if line else ""
    return DataFileError(f"{path} is truncated or corrupt ({type(e).__name__}: {detail}{after}); {REPLACE}")


def not_utf8(path: Path, lineno: int, line: str) -> DataFileError | None:
    """The error for a line that holds bytes that are not UTF-8 (``None`` if it holds none)."""
    bad = _ESCAPED_BYTE.search(line)
    if bad is None:
        return None
    byte = ord(bad.group()) - 0xDC00
    return DataFileError(f"{path}:{lineno}: not UTF-8 text (byte 0x{byte:02x} at character {bad.start() + 1}); "
                         "re-encode the file as UTF-8, or remove or fix that line")


def _record(path: Path, lineno: int, line: str, require: Iterable[str]) -> dict[str, Any]:
    """The JSON object on line ``lineno``, holding every field of ``require``."""
    problem = not_utf8(path, lineno, line)
    if problem is not None:
        raise problem
    fix = "fix or remove that line"
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as e:
        raise DataFileError(f"{path}:{lineno}: malformed JSON ({e.msg}, column {e.colno}); {fix}") from None
    if not isinstance(rec, dict):
        raise DataFileError(f"{path}:{lineno}: expected a JSON object, got {type(rec).__name__}; {fix}")
    missing = [f for f in require if f not in rec]
    if missing:
        raise DataFileError(f"{path}:{lineno}: the record has no field {', '.join(map(repr, missing))} "
                            f"(it has {', '.join(map(repr, sorted(rec))) or 'none'}); {fix}")
    return rec


def iter_jsonl(path: str | os.PathLike, require: Iterable[str] = ()) -> Iterator[dict[str, Any]]:
    """Yield the records (JSON objects) of a ``.jsonl``, ``.jsonl.xz`` or ``.jsonl.gz`` file.

    Blank lines are skipped. Raises :class:`DataFileError` naming the file and the 1-based line
    for a malformed line, a line that is not UTF-8 or not a JSON object, or a record without one
    of the fields ``require``; naming the file for a truncated/corrupt one.
    """
    path = Path(path)
    require = tuple(require)
    lineno = 0
    try:
        with _open_text(path) as f:
            for lineno, line in enumerate(f, start=1):
                if line.strip():
                    yield _record(path, lineno, line, require)
    except _STREAM_ERRORS as e:
        raise _stream_error(path, lineno, e) from None


def check_jsonl(path: str | os.PathLike, field: str | None = None) -> int:
    """Read a whole JSON-lines file and return its number of records.

    Raises :class:`DataFileError` (see :func:`iter_jsonl`); also when the file holds no records,
    or when a record lacks ``field`` (reported with its line number).
    """
    path = Path(path)
    n = sum(1 for _ in iter_jsonl(path, () if field is None else (field,)))
    if n == 0:
        raise no_records(path)
    return n


def undecodable(path: str | os.PathLike, error: UnicodeDecodeError) -> DataFileError:
    """The error for a file another reader (``datasets``, pyarrow) found not to be UTF-8: the
    file re-read line by line, so that the message names the line."""
    try:
        check_jsonl(path)
    except DataFileError as diagnosis:
        return diagnosis
    return DataFileError(f"{path}: not UTF-8 text ({error.reason}); re-encode the file as UTF-8")


def read_jsonl(path: str | os.PathLike, limit: int | None = None, require: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The first ``limit`` records (all when ``None``), each holding the fields ``require``; a
    file without any record is a :class:`DataFileError` (a data set of nothing is never meant)."""
    out = []
    for rec in iter_jsonl(path, require):
        if limit is not None and len(out) >= limit:
            break
        out.append(rec)
    if not out:
        raise no_records(Path(path))
    return out


def no_records(path: Path) -> DataFileError:
    """The error for a data file that holds no record (empty, or blank lines only)."""
    empty = path.exists() and path.stat().st_size == 0
    return DataFileError(f"{path} is empty (0 bytes); {REPLACE}" if empty else f"{path} holds no records; {REPLACE}")


# --------------------------------------------------------------------------------------------
# CSV tables

_PANDAS_LINE = re.compile(r"\bline (\d+)")


def read_csv_file(path: str | os.PathLike, columns: Iterable[str] = (), fix: str = REPLACE, **read_csv: Any):
    """``pandas.read_csv(path, **read_csv)``; a file that cannot be parsed, is not UTF-8, is
    empty or lacks one of ``columns`` is a :class:`DataFileError` naming the file (and the
    line, where pandas tells it) and ending in ``fix``, what to do about it."""
    import pandas as pd

    path = Path(path)
    try:
        table = pd.read_csv(path, **read_csv)
    except pd.errors.EmptyDataError:
        raise DataFileError(f"{path} is empty (no header line); {fix}") from None
    except pd.errors.ParserError as e:
        detail = " ".join(str(e).split()).removeprefix("Error tokenizing data. C error: ")
        m = _PANDAS_LINE.search(detail)
        where = f"{path}:{m.group(1)}" if m else str(path)
        raise DataFileError(f"{where}: malformed table row ({detail}); fix or remove that line, or {fix}") from None
    except UnicodeDecodeError as e:
        raise DataFileError(f"{path}: not UTF-8 text (byte 0x{e.object[e.start]:02x}); {fix}") from None
    except _STREAM_ERRORS as e:
        raise _stream_error(path, 0, e) from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataFileError(f"{path}:1: the header has no column {', '.join(map(repr, missing))} "
                            f"(it has {', '.join(map(repr, table.columns))}); {fix}")
    return table
