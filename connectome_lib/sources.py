"""Corpus sources: where a corpus's documents come from, and reading them.

A corpus *source* is one of: a data-set key of :mod:`connectome_lib.paths` (``corpus_outer``,
``corpus_inner``, ``corpus_val``); a path to a JSON-lines file (``.jsonl``, ``.jsonl.xz``,
``.jsonl.gz``) with a text field; or ``hub:NAME[@CONFIG][#SPLIT]`` for a Hugging Face hub data set
(e.g. ``hub:HuggingFaceFW/fineweb@sample-100BT#train``). :func:`resolve_source` turns a spec into
a :class:`LocalSource` or :class:`HubSource` (never downloading anything) and
:func:`iter_documents` yields its texts. Both the tokenised corpora (:mod:`connectome_lib.data`)
and the trained tokenizers (:mod:`connectome_lib.tokenizer`) read corpora through here.

A hub split is streamed. ``SPLIT[START:STOP]`` with document numbers (``train[:500000]``,
``train[600000:]``) is streamed too: the first ``START`` documents are skipped and reading stops
before document ``STOP``, so disjoint ranges of one split give disjoint corpora (the paper
profile's inner, validation and outer corpora) without downloading the split. Any other slice
(``train[2%:]``, datasets' own syntax) needs the whole split on disk: ``datasets`` downloads and
materialises it first, with a warning.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from .paths import DATASETS, DataMissingError, data_path, resolve_data_dir

_HUB_RE = re.compile(r"^hub:(?P<name>[^@#]+)(?:@(?P<config>[^#]+))?(?:#(?P<split>.+))?$")
#: a split with a range of document numbers, which is streamed: ``train[100:]``, ``train[:5]``
_RANGE_RE = re.compile(r"^(?P<split>[^\[\]]+)\[\s*(?P<start>\d*)\s*:\s*(?P<stop>\d*)\s*\]$")


@dataclass(frozen=True)
class LocalSource:
    """A JSON-lines file (optionally .xz/.gz compressed), one document per line."""

    path: Path
    label: str | None = None  # how to show it: a data-set file relative to the data directory

    def describe(self) -> str:
        return self.label or str(self.path)

    def fingerprint(self) -> str:
        st = self.path.stat()
        return f"local:{self.path.resolve()}:{st.st_size}:{int(st.st_mtime)}"


@dataclass(frozen=True)
class HubSource:
    """A data set on the Hugging Face hub (needs a network): documents ``start`` to ``stop``
    (exclusive; ``None``: to the end) of ``split``, streamed. A ``split`` that still holds a
    slice (``train[2%:]``) is handed to ``datasets`` as it is, which downloads the whole split."""

    name: str
    config: str | None = None
    split: str = "train"
    start: int = 0
    stop: int | None = None

    def __post_init__(self) -> None:
        if self.start < 0 or (self.stop is not None and self.stop <= self.start):
            raise ValueError(f"{self.describe()}: the document range must have 0 <= START < STOP")

    @property
    def streamed(self) -> bool:
        """Whether reading streams the documents (no slice for ``datasets`` to materialise)."""
        return "[" not in self.split

    def describe(self) -> str:
        ranged = self.start or self.stop is not None
        rng = f"[{self.start or ''}:{'' if self.stop is None else self.stop}]" if ranged else ""
        return f"hub:{self.name}" + (f"@{self.config}" if self.config else "") + f"#{self.split}{rng}"

    def fingerprint(self) -> str:
        return self.describe()


def parse_hub_split(split: str | None) -> tuple[str, int, int | None]:
    """``"train[600000:]"`` -> ``("train", 600000, None)``: a split and the range of document
    numbers to stream; a split without one, or with another slice (``train[2%:]``), is returned
    whole with the range ``(0, None)``."""
    split = split or "train"
    m = _RANGE_RE.match(split)
    if not m:
        return split, 0, None
    return m["split"], int(m["start"] or 0), int(m["stop"]) if m["stop"] else None


def resolve_source(spec: str, data_dir: str | os.PathLike | None = None) -> LocalSource | HubSource:
    """Turn a corpus spec (data-set key, file path or ``hub:...``) into a source object.

    Resolving never downloads anything; a missing local file raises :class:`DataMissingError`.
    """
    m = _HUB_RE.match(spec)
    if m:
        split, start, stop = parse_hub_split(m["split"])
        return HubSource(m["name"], m["config"], split, start, stop)
    if spec in DATASETS:
        return LocalSource(data_path(spec, data_dir), label=f"<data_dir>/{DATASETS[spec].relpath}")
    path = Path(spec).expanduser()
    if not path.is_absolute() and not path.exists():
        path = resolve_data_dir(data_dir) / spec
    if not path.exists():
        raise DataMissingError(
            f"corpus file {spec!r} not found (looked at {path}); give a data-set key "
            f"({', '.join(k for k in DATASETS if k.startswith('corpus'))}), a .jsonl[.xz|.gz] path, "
            "or hub:NAME[@CONFIG][#SPLIT]"
        )
    return LocalSource(path)


def iter_documents(source: LocalSource | HubSource, text_field: str = "text", with_meta: bool = False):
    """Yield the documents' texts through ``datasets`` (local JSON lines, or hub streaming); with
    ``with_meta``, ``(text, id, title)`` triples (``id``: the record's ``id`` field as a string,
    ``None`` if it has none; ``title``: its ``title`` field or "")."""
    import datasets

    datasets.disable_progress_bars()
    if isinstance(source, LocalSource):
        import logging

        json_log = logging.getLogger("datasets.packaged_modules.json.json")
        level = json_log.level
        json_log.setLevel(logging.CRITICAL)  # its multi-line parse error is replaced by ours below
        try:
            ds = datasets.load_dataset("json", data_files=str(source.path), split="train")
        except Exception as e:  # name the file (and line): an empty, cut-off or corrupt corpus
            raise _unreadable_corpus(source.path, e) from e
        finally:
            json_log.setLevel(level)
    else:
        ds = hub_dataset(source, datasets.load_dataset)
    if text_field not in (ds.column_names or [text_field]):
        raise ValueError(f"corpus {getattr(source, 'path', source.describe())} has no field {text_field!r} "
                         f"(fields: {ds.column_names})")
    for row in ds:
        if with_meta:
            doc_id = row.get("id")
            yield row[text_field], None if doc_id is None else str(doc_id), str(row.get("title", "") or "")
        else:
            yield row[text_field]


def hub_dataset(source: HubSource, load_dataset):
    """The documents of ``source`` as a ``datasets`` data set: streamed, with the range of
    document numbers applied by ``skip``/``take``; a split with another slice is materialised
    (with a warning: that downloads the whole split). ``load_dataset`` is
    ``datasets.load_dataset`` (an argument so the range logic is tested without a network)."""
    if not source.streamed:
        warnings.warn(f"{source.describe()}: a slice other than document numbers makes datasets download the "
                      "whole split before reading it; give a range of documents (e.g. train[600000:]) to stream it",
                      RuntimeWarning, stacklevel=3)
        return load_dataset(source.name, source.config, split=source.split, streaming=False)
    ds = load_dataset(source.name, source.config, split=source.split, streaming=True)
    if source.start:
        ds = ds.skip(source.start)
    if source.stop is not None:
        ds = ds.take(source.stop - source.start)
    return ds


def _unreadable_corpus(path: Path, error: Exception) -> Exception:
    """The error to raise when ``datasets`` cannot read a local corpus: re-read the file line by
    line to say what is wrong with it (empty, truncated, corrupt, malformed line N)."""
    from .jsonl import DataFileError, check_jsonl

    if isinstance(error, OSError) and not isinstance(error, DataFileError):
        return error  # a disk or permission problem: its message names the path
    try:
        check_jsonl(path)
    except DataFileError as diagnosis:
        return DataFileError(f"corpus {diagnosis}")
    detail = " ".join(str(error).split())
    return DataFileError(f"corpus {path} could not be read ({type(error).__name__}: {detail})")
