"""Corpora: read through ``datasets``, tokenised once into cached uint16 token files.

A corpus is tokenised into one flat ``uint16`` array, documents separated by ``<|endoftext|>``,
stored as ``<cache_dir>/<split>-<key>.bin`` next to a manifest ``<...>.json`` that records the
source, the tokenizer, the number of tokens and the file's checksum. The cache key hashes the
source (and, for local files, their size and modification time), the tokenizer files and the
token limit, so a changed input is re-tokenised, never silently reused.

Training draws *windows* of ``seq_len + 1`` tokens at random offsets. The offsets of a batch are
a pure function of ``(seed, iteration, micro_step, rank)``, so a resumed run sees exactly the
batches an uninterrupted run would have seen, without any sampler state to save.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .layout import write_json_atomic
from .paths import DATASETS, DataMissingError, data_path, resolve_data_dir
from .tokenizer import EOT_TOKEN_ID, load_tokenizer

SPLITS = ("outer", "inner", "val")
_HUB_RE = re.compile(r"^hub:(?P<name>[^@#]+)(?:@(?P<config>[^#]+))?(?:#(?P<split>.+))?$")


@dataclass(frozen=True)
class LocalSource:
    """A JSON-lines file (optionally .xz/.gz compressed), one document per line."""

    path: Path

    def describe(self) -> str:
        return str(self.path)

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
        return LocalSource(data_path(spec, data_dir))
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


def iter_documents(source: LocalSource | HubSource, text_field: str = "text", cache_dir: str | None = None):
    """Yield the documents' texts through ``datasets`` (local JSON lines, or hub streaming)."""
    import datasets

    datasets.disable_progress_bars()
    if isinstance(source, LocalSource):
        ds = datasets.load_dataset(
            "json", data_files=str(source.path), split="train", cache_dir=cache_dir
        )
    else:
        slice_free = re.sub(r"\[.*\]$", "", source.split)
        streaming = slice_free == source.split  # slicing needs a materialised split
        ds = datasets.load_dataset(source.name, source.config, split=source.split, streaming=streaming)
    if text_field not in (ds.column_names or [text_field]):
        raise ValueError(f"corpus {source.describe()} has no field {text_field!r} (fields: {ds.column_names})")
    for row in ds:
        yield row[text_field]


def _tokenizer_fingerprint(tokenizer) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(tokenizer.get_vocab(), sort_keys=True).encode())
    h.update(type(tokenizer).__name__.encode())
    return h.hexdigest()[:16]


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def tokenize_corpus(
    source: LocalSource | HubSource,
    out_path: Path,
    tokenizer,
    text_field: str = "text",
    max_tokens: int | None = None,
    batch_docs: int = 8,
    progress: bool = True,
) -> dict:
    """Tokenise a corpus into a flat uint16 file (EOT after each document); return its manifest.

    The file is written under a temporary name and renamed at the end, so an interrupted run
    leaves no half-written cache behind.
    """
    if len(tokenizer) > np.iinfo(np.uint16).max + 1:
        raise ValueError("uint16 token files need a vocabulary of at most 65,536 tokens")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".bin.tmp")
    n_tokens, n_docs, t0 = 0, 0, time.time()
    bar = tqdm(total=max_tokens, unit="tok", unit_scale=True, desc=f"tokenise {out_path.stem}", disable=not progress)
    try:
        with open(tmp, "wb") as f:
            batch: list[str] = []

            def flush() -> bool:
                nonlocal n_tokens, n_docs
                ids = tokenizer(batch, add_special_tokens=False)["input_ids"]
                for doc in ids:
                    arr = np.asarray(doc + [EOT_TOKEN_ID], dtype=np.uint16)
                    if max_tokens is not None and n_tokens + len(arr) >= max_tokens:
                        arr = arr[: max_tokens - n_tokens]
                    f.write(arr.tobytes())
                    n_tokens += len(arr)
                    n_docs += 1
                    bar.update(len(arr))
                    if max_tokens is not None and n_tokens >= max_tokens:
                        return True
                batch.clear()
                return False

            done = False
            for text in iter_documents(source, text_field):
                if text:
                    batch.append(text)
                if len(batch) >= batch_docs and flush():
                    done = True
                    break
            if batch and not done:
                flush()
        bar.close()
        if n_tokens == 0:
            raise ValueError(f"corpus {source.describe()} produced no tokens")
        os.replace(tmp, out_path)
    except BaseException:
        bar.close()
        if tmp.exists():
            tmp.unlink()
        raise
    return {
        "source": source.describe(),
        "tokenizer": _tokenizer_fingerprint(tokenizer),
        "tokenizer_name": getattr(tokenizer, "name_or_path", ""),
        "n_tokens": n_tokens,
        "n_documents": n_docs,
        "max_tokens": max_tokens,
        "dtype": "uint16",
        "eot_token_id": EOT_TOKEN_ID,
        "sha256": _sha256_file(out_path),
        "seconds": round(time.time() - t0, 2),
    }


def token_cache_path(split: str, data_cfg, tokenizer=None) -> Path:
    """Where the tokenised ``split`` (outer/inner/val) of ``data_cfg`` is cached."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    source = resolve_source(getattr(data_cfg, split), data_cfg.data_dir)
    tokenizer = tokenizer or load_tokenizer(data_cfg.tokenizer, data_cfg.data_dir)
    max_tokens = getattr(data_cfg, f"{split}_max_tokens")
    key = hashlib.sha256(
        f"{source.fingerprint()}|{_tokenizer_fingerprint(tokenizer)}|{max_tokens}|{data_cfg.text_field}".encode()
    ).hexdigest()[:12]
    return Path(data_cfg.cache_dir) / f"{split}-{key}.bin"


def load_corpus_tokens(split: str, data_cfg, progress: bool = True, verify: bool = False) -> np.ndarray:
    """The tokens of ``split`` as a read-only uint16 memmap, tokenising on first use.

    ``verify=True`` re-computes the file's checksum against its manifest.
    """
    from accelerate import PartialState

    tokenizer = load_tokenizer(data_cfg.tokenizer, data_cfg.data_dir)
    path = token_cache_path(split, data_cfg, tokenizer)
    manifest_path = path.with_suffix(".json")
    with PartialState().main_process_first():  # with several processes, one tokenises
        _ensure_tokenized(split, data_cfg, tokenizer, path, manifest_path, progress, verify)
    return np.memmap(path, dtype=np.uint16, mode="r")


def _ensure_tokenized(split, data_cfg, tokenizer, path: Path, manifest_path: Path, progress: bool, verify: bool) -> None:
    if not (path.exists() and manifest_path.exists()):
        source = resolve_source(getattr(data_cfg, split), data_cfg.data_dir)
        manifest = tokenize_corpus(
            source, path, tokenizer, data_cfg.text_field, getattr(data_cfg, f"{split}_max_tokens"), progress=progress
        )
        manifest["split"] = split
        write_json_atomic(manifest_path, manifest)
    elif verify:
        manifest = json.loads(manifest_path.read_text())
        if _sha256_file(path) != manifest["sha256"]:
            raise ValueError(f"token cache {path} does not match its manifest's checksum; delete it to re-tokenise")


def corpus_manifest(split: str, data_cfg) -> dict:
    """The manifest of a cached split (tokenising it first if needed)."""
    load_corpus_tokens(split, data_cfg, progress=False)
    return json.loads(token_cache_path(split, data_cfg).with_suffix(".json").read_text())


# --------------------------------------------------------------------------------------------
# batches


def window_offsets(n_tokens: int, seq_len: int, batch_size: int, seed: int, iteration: int, micro_step: int = 0, rank: int = 0) -> np.ndarray:
    """Start offsets of a training batch: a pure function of its coordinates (resumable)."""
    high = n_tokens - seq_len - 1
    if high <= 0:
        raise ValueError(f"corpus of {n_tokens} tokens is too short for windows of {seq_len + 1}")
    rng = np.random.default_rng([seed, iteration, micro_step, rank])
    return rng.integers(0, high + 1, size=batch_size)


def training_batch(tokens: np.ndarray, seq_len: int, batch_size: int, seed: int, iteration: int, micro_step: int = 0, rank: int = 0) -> torch.Tensor:
    """A (batch_size, seq_len + 1) LongTensor of random windows; inputs = [:, :-1], targets = [:, 1:]."""
    offs = window_offsets(len(tokens), seq_len, batch_size, seed, iteration, micro_step, rank)
    return torch.from_numpy(np.stack([np.asarray(tokens[o : o + seq_len + 1], dtype=np.int64) for o in offs]))


def validation_batches(tokens: np.ndarray, seq_len: int, batch_size: int, n_batches: int) -> list[torch.Tensor]:
    """A fixed validation set: consecutive non-overlapping windows from the start of ``tokens``."""
    n_windows = min(n_batches * batch_size, (len(tokens) - 1) // seq_len)
    if n_windows < 1:
        raise ValueError(f"validation corpus of {len(tokens)} tokens is shorter than one window of {seq_len + 1}")
    wins = np.stack(
        [np.asarray(tokens[i * seq_len : i * seq_len + seq_len + 1], dtype=np.int64) for i in range(n_windows)]
    )
    return [torch.from_numpy(wins[i : i + batch_size]) for i in range(0, n_windows, batch_size)]


def corpus_table(data_cfg):
    """One row per split: source, documents, tokens and tokenisation time (tokenising if needed)."""
    import pandas as pd

    rows = []
    for split in SPLITS:
        m = corpus_manifest(split, data_cfg)
        rows.append({"split": split, "source": m["source"], "documents": m["n_documents"], "tokens": m["n_tokens"],
                     "token_limit": m["max_tokens"], "tokenise_seconds": m["seconds"]})
    return pd.DataFrame(rows)
