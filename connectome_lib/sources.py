"""Corpus sources: where a corpus's documents come from, and reading them.

A corpus *source* is one of: a data-set key of :mod:`connectome_lib.paths` (``corpus_outer``,
``corpus_inner``, ``corpus_val``); a path to a JSON-lines file (``.jsonl``, ``.jsonl.xz``,
``.jsonl.gz``) with a text field; or ``hub:NAME[@CONFIG][#SPLIT]`` for a Hugging Face hub data set
(e.g. ``hub:HuggingFaceFW/fineweb@sample-10BT#train``). :func:`resolve_source` turns a spec into
a :class:`LocalSource` or :class:`HubSource` (never downloading anything) and
:func:`iter_documents` yields its texts. Both the tokenised corpora (:mod:`connectome_lib.data`)
and the trained tokenizers (:mod:`connectome_lib.tokenizer`) read corpora through here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .paths import DATASETS, DataMissingError, data_path, resolve_data_dir

_HUB_RE = re.compile(r"^hub:(?P<name>[^@#]+)(?:@(?P<config>[^#]+))?(?:#(?P<split>.+))?$")


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
    """A data set on the Hugging Face hub (streamed; needs a network)."""

    name: str
    config: str | None = None
    split: str = "train"

    def describe(self) -> str:
        return f"hub:{self.name}" + (f"@{self.config}" if self.config else "") + f"#{self.split}"

    def fingerprint(self) -> str:
        return self.describe()


def resolve_source(spec: str, data_dir: str | os.PathLike | None = None) -> LocalSource | HubSource:
    """Turn a corpus spec (data-set key, file path or ``hub:...``) into a source object.

    Resolving never downloads anything; a missing local file raises :class:`DataMissingError`.
    """
    m = _HUB_RE.match(spec)
    if m:
        return HubSource(m["name"], m["config"], m["split"] or "train")
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
        slice_free = re.sub(r"\[.*\]$", "", source.split)
        streaming = slice_free == source.split  # slicing needs a materialised split
        ds = datasets.load_dataset(source.name, source.config, split=source.split, streaming=streaming)
    if text_field not in (ds.column_names or [text_field]):
        raise ValueError(f"corpus {getattr(source, 'path', source.describe())} has no field {text_field!r} "
                         f"(fields: {ds.column_names})")
    for row in ds:
        if with_meta:
            doc_id = row.get("id")
            yield row[text_field], None if doc_id is None else str(doc_id), str(row.get("title", "") or "")
        else:
            yield row[text_field]


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
