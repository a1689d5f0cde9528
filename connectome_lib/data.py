"""Corpora: read through ``datasets``, tokenised once into cached uint16 token files.

A corpus split is tokenised into one flat ``uint16`` array, documents separated by
``<|endoftext|>`` (EOT), stored as ``<cache_dir>/<split>-<key>.bin`` next to a manifest
``<...>.json`` that records the source, the tokenizer, the number of tokens, the file's checksum,
the books left out, and which book every token comes from (``documents`` and ``segments``; see
:func:`token_books` and :func:`book_table`, for per-book validation losses).

Books that appear twice in the shared corpora are left out (``data.exclude``: by default the
committed list ``profiles/corpus_exclusions.csv`` written by
:func:`connectome_lib.corpus_audit.write_exclusions`). A split longer than its token limit is,
by default (``data.sample: chunks``), tokenised whole, cut into chunks of ``data.chunk_tokens``
and sampled -- a seeded, stratified random choice of chunks in corpus order, an EOT marking
every discontinuity -- so that every book contributes in proportion to its length instead of
the first book in the file filling the split; ``data.sample: head`` reads the documents in file
order up to the limit, as the official loader does (and as every hub corpus is read, and every
split not in ``data.sample_splits``: by default the outer split, which the generations read
on through). The exact
rules are in :func:`tokenize_corpus`. The cache key hashes the source (and, for local files,
their size and modification time), the tokenizer files, the token limit, the ids excluded from
the split and the sampling (mode, chunk size, seed), so a changed input or setting is
re-tokenised, never silently reused. Files are written under a temporary name and renamed.

Training reads *windows* of ``seq_len + 1`` tokens through a :class:`BatchSampler`: forward
through the corpus (the official loader), in a seeded shuffled order per pass, or at random
offsets. The windows of a batch are a pure function of ``(seed, iteration, micro_step, rank)``
and the run's starting ``offset``, so a resumed run sees exactly the batches an uninterrupted
run would have seen, without any sampler state to save, and the outer loop's generations read
on through the corpus instead of repeating one another's data.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from .fingerprint import file_sha256
from .jsonl import undecodable
from .layout import write_json_atomic
from .sources import HubSource, LocalSource, iter_documents, resolve_source
from .tokenizer import profile_tokenizer

__all__ = ["SPLITS", "LocalSource", "HubSource", "resolve_source", "iter_documents", "tokenize_corpus",
           "token_cache_path", "load_corpus_tokens", "TokenCacheError", "corpus_manifest", "corpus_table",
           "SAMPLES", "DUPLICATES_FILE", "excluded_ids", "token_books", "book_table",
           "BatchSampler", "window_offsets", "unigram_entropy", "validation_batches"]

SPLITS = ("outer", "inner", "val")
#: the values of ``data.sample``: how a split is cut to its token limit (:func:`tokenize_corpus`)
SAMPLES = ("chunks", "head")


def _tokenizer_fingerprint(tokenizer) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(tokenizer.get_vocab(), sort_keys=True).encode())
    h.update(type(tokenizer).__name__.encode())
    return h.hexdigest()[:16]


def _write_sampled(tmp: Path, arrays: list[np.ndarray], total: int, max_tokens: int | None, chunk_tokens: int,
                   rng: np.random.Generator, eot: int, segments: list[list[int]]):
    """``sample="chunks"``: write the kept chunks of the stream of documents ``arrays`` to
    ``tmp`` (an EOT at every discontinuity) and append the output's segments (``[start,
    length, document position]``); return ``(chunks, ranges, n_tokens)``."""
    bounds = np.zeros(len(arrays) + 1, dtype=np.int64)  # where each document starts in the stream
    bounds[1:] = np.cumsum([len(a) for a in arrays])
    stream = np.concatenate(arrays)
    arrays.clear()
    chunks = None
    if max_tokens is not None and total > max_tokens:
        ranges, chunks = _chunk_ranges(total, max_tokens, chunk_tokens, rng)
    else:
        ranges = [(0, total)]
    n_tokens = 0
    marker = np.asarray([eot], dtype=np.uint16)
    with open(tmp, "wb") as f:
        for k, (lo, hi) in enumerate(ranges):
            if k:  # not contiguous with the previous range (contiguous chunks were merged)
                f.write(marker.tobytes())
                segments[-1][1] += 1
                n_tokens += 1
            f.write(stream[lo:hi].tobytes())
            d = int(np.searchsorted(bounds, lo, side="right")) - 1
            pos = lo
            while pos < hi:  # one segment per document the range runs through
                end = min(hi, int(bounds[d + 1]))
                segments.append([n_tokens, end - pos, d])
                n_tokens += end - pos
                pos, d = end, d + 1
    return chunks, ranges, n_tokens


def tokenize_corpus(
    source: LocalSource | HubSource,
    out_path: Path,
    tokenizer,
    text_field: str = "text",
    max_tokens: int | None = None,
    batch_docs: int = 8,
    progress: bool = True,
    exclude: frozenset[str] = frozenset(),
    sample: str = "head",
    chunk_tokens: int = 4096,
    seed: int | Sequence[int] = 0,
) -> dict:
    """Tokenise a corpus into a flat uint16 file (EOT after each document); return its manifest.

    Documents whose ``id`` is in ``exclude`` are skipped (records without an id never are), and
    so are empty ones. ``sample`` says how the corpus is cut to ``max_tokens``:

    ``"head"``
        documents in file order until ``max_tokens`` (the last one cut off there; the official
        loader's "first N tokens"). Reading stops at the limit.
    ``"chunks"``
        every document is tokenised and the token stream (each document followed by its EOT) is
        cut into consecutive chunks of ``chunk_tokens``. If the stream is longer than
        ``max_tokens``, ``K = ceil(max_tokens / chunk_tokens)`` of its ``N`` full chunks are
        kept (the short tail of the stream is not a candidate): the chunks are split into ``K``
        consecutive strata of ``N // K`` or ``N // K + 1`` chunks and one chunk is drawn
        uniformly from each (``seed``). That is a seeded random subset of ``K`` chunks, in
        corpus order, in which every book's share is its share of the stream to within about a
        chunk, and every book at least two strata long is sure to be read (a shorter one may
        not be). The kept chunks are concatenated, the last one shortened so that exactly
        ``max_tokens`` corpus tokens are kept, and an EOT is inserted wherever two kept chunks
        are not contiguous in the stream, marking the discontinuity (also where the chunk before
        it happens to end with a document's own EOT). So the output has exactly ``max_tokens``
        tokens plus one per discontinuity (at most ``K - 1``; ``n_discontinuities`` in the
        manifest). With ``max_tokens`` ``None`` or at least the stream's length, everything is
        kept, exactly as with ``"head"``.

    The manifest records the documents read (``documents``: ``index`` = the record's line in
    the file, ``id``, ``title``, ``tokens`` = its tokenised length with its EOT), the runs of
    output tokens that come from each (``segments``: ``[start, length, index]``, one per
    contiguous run of a document's tokens, in output order; an inserted EOT belongs to the run
    before it; see :func:`token_books`) and the ids left out (``excluded``,
    ``n_excluded``). The file is written under a temporary name and renamed at the end, so an
    interrupted run leaves no half-written cache behind.
    """
    if sample not in SAMPLES:
        raise ValueError(f"sample must be one of {SAMPLES}, got {sample!r}")
    if len(tokenizer) > np.iinfo(np.uint16).max + 1:
        raise ValueError("uint16 token files need a vocabulary of at most 65,536 tokens")
    if sample == "chunks" and chunk_tokens < 1:
        raise ValueError(f"chunk_tokens must be >= 1, got {chunk_tokens}")
    head = sample == "head"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".bin.tmp")
    t0 = time.time()
    eot = tokenizer.eos_token_id
    docs: list[dict] = []
    arrays: list[np.ndarray] = []
    skipped: list[str] = []
    segments: list[list[int]] = []
    total = 0
    bar = tqdm(total=max_tokens if head else None, unit="tok", unit_scale=True,
               desc=f"tokenise {out_path.stem}", disable=not progress)
    # "head" writes every document as soon as it is tokenised (memory: one batch, whatever the
    # corpus size); "chunks" must hold the whole stream before it can draw its chunks
    written = open(tmp, "wb") if head else None  # noqa: SIM115 - closed below, also on error
    try:
        batch: list[tuple[str, int, str | None, str]] = []

        def flush() -> bool:
            """Tokenise the batch; True once ``head`` reading has reached ``max_tokens``."""
            nonlocal total
            ids = tokenizer([b[0] for b in batch], add_special_tokens=False)["input_ids"]
            for (_, index, doc_id, title), doc in zip(batch, ids):
                arr = np.asarray(doc + [eot], dtype=np.uint16)
                docs.append({"index": index, "id": doc_id, "title": title, "tokens": len(arr)})
                if head and max_tokens is not None and total + len(arr) >= max_tokens:
                    arr = arr[: max_tokens - total]
                if written is not None:  # one segment per document: the stream is the file
                    written.write(arr.tobytes())
                    segments.append([total, len(arr), len(docs) - 1])
                else:
                    arrays.append(arr)
                total += len(arr)
                bar.update(len(arr))
                if head and max_tokens is not None and total >= max_tokens:
                    return True
            batch.clear()
            return False

        done = False
        for index, (text, doc_id, title) in enumerate(documents(source, text_field)):
            if doc_id is not None and doc_id in exclude:
                skipped.append(doc_id)
                continue
            if text:
                batch.append((text, index, doc_id, title))
            if len(batch) >= batch_docs and flush():
                done = True
                break
        if batch and not done:
            flush()
        bar.close()
        if total == 0:
            raise ValueError(f"corpus {getattr(source, 'path', source.describe())} produced no tokens")
        if written is not None:
            written.close()
            chunks, ranges, n_tokens = None, [(0, total)], total
        else:
            chunks, ranges, n_tokens = _write_sampled(tmp, arrays, total, max_tokens, chunk_tokens,
                                                      np.random.default_rng(seed), eot, segments)
        os.replace(tmp, out_path)
    except BaseException:
        bar.close()
        if written is not None:
            written.close()
        if tmp.exists():
            tmp.unlink()
        raise
    for seg in segments:  # positions in ``docs`` -> the documents' own indices (file lines)
        seg[2] = docs[seg[2]]["index"]
    kept = {seg[2] for seg in segments}
    return {
        "source": source.describe(),
        "tokenizer": _tokenizer_fingerprint(tokenizer),
        "tokenizer_name": getattr(tokenizer, "name_or_path", ""),
        "n_tokens": n_tokens,
        "n_documents": len(kept),
        "max_tokens": max_tokens,
        "sample": sample,
        "chunk_tokens": chunk_tokens if not head else None,
        "sample_seed": (list(seed) if isinstance(seed, (list, tuple)) else seed) if not head else None,
        "stream_tokens": int(total),
        "chunks": chunks,
        "n_discontinuities": len(ranges) - 1,
        "excluded": sorted(skipped),
        "n_excluded": len(skipped),
        "documents": docs,
        "segments": segments,
        "dtype": "uint16",
        "eot_token_id": eot,
        "vocab_size": len(tokenizer),
        "bytes": out_path.stat().st_size,
        "sha256": file_sha256(out_path),
        "seconds": round(time.time() - t0, 2),
    }


def documents(source: LocalSource | HubSource, text_field: str = "text"):
    """``(text, id, title)`` of every document of ``source`` (:func:`iter_documents`); a local
    file that is not UTF-8 is reported by file and line (:func:`connectome_lib.jsonl.undecodable`)."""
    try:
        yield from iter_documents(source, text_field, with_meta=True)
    except UnicodeDecodeError as e:
        if not isinstance(source, LocalSource):
            raise
        raise undecodable(source.path, e) from None


def _chunk_ranges(total: int, max_tokens: int, chunk: int, rng: np.random.Generator):
    """The stratified chunk sample of :func:`tokenize_corpus` for a stream of ``total >
    max_tokens`` tokens: ``(ranges, counts)``. ``ranges`` are the ``[start, stop)`` spans of the
    stream to keep, in order, contiguous chunks merged, exactly ``max_tokens`` tokens in all;
    ``counts`` the stream's chunks and the chunks kept.

    The candidates are the stream's full chunks (its short tail, fewer than ``chunk`` tokens of
    the last book, is left out), unless there are fewer than ``K = ceil(max_tokens / chunk)``
    of them: then all chunks are kept (the stream, cut at ``max_tokens``)."""
    n_all = -(-total // chunk)
    n_full = total // chunk
    k = -(-max_tokens // chunk)
    n = n_full if n_full >= k else n_all
    k = min(k, n)
    edges = (np.arange(k + 1, dtype=np.int64) * n) // k  # k strata of n // k or n // k + 1 chunks
    picks = rng.integers(edges[:-1], edges[1:])
    ranges: list[list[int]] = []
    left = max_tokens
    for c in picks.tolist():
        lo = c * chunk
        hi = min((c + 1) * chunk, total, lo + left)
        left -= hi - lo
        if ranges and ranges[-1][1] == lo:
            ranges[-1][1] = hi
        else:
            ranges.append([lo, hi])
        if left == 0:
            break
    return [tuple(r) for r in ranges], {"stream": int(n_all), "kept": int(k)}


def token_cache_path(split: str, data_cfg, tokenizer=None) -> Path:
    """Where the tokenised ``split`` (outer/inner/val) of ``data_cfg`` is cached."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    source = resolve_source(getattr(data_cfg, split), data_cfg.data_dir)
    tokenizer = tokenizer or profile_tokenizer(data_cfg, progress=False)
    max_tokens = getattr(data_cfg, f"{split}_max_tokens")
    excluded = hashlib.sha256("\n".join(sorted(excluded_ids(split, data_cfg))).encode()).hexdigest()[:16]
    key = hashlib.sha256(
        f"{source.fingerprint()}|{_tokenizer_fingerprint(tokenizer)}|{max_tokens}|{data_cfg.text_field}"
        f"|exclude={excluded}|{_sampling(split, data_cfg)}".encode()
    ).hexdigest()[:12]
    return Path(data_cfg.cache_dir) / f"{split}-{key}.bin"


#: the committed list of duplicate books (``data.exclude: duplicates``)
DUPLICATES_FILE = Path(__file__).parent / "profiles" / "corpus_exclusions.csv"
def _opt(data_cfg, name: str):
    """``data_cfg.name``, or :class:`~connectome_lib.config.DataConfig`'s default for a
    configuration object without the newer fields."""
    if hasattr(data_cfg, name):
        return getattr(data_cfg, name)
    from .config import DataConfig

    return getattr(DataConfig(), name)


def excluded_ids(split: str, data_cfg) -> frozenset[str]:
    """The ids of the books ``data.exclude`` leaves out of ``split``: the rows of that split in
    the CSV it names (``"duplicates"``: :data:`DUPLICATES_FILE`); none for ``None`` or a hub
    source."""
    spec = _opt(data_cfg, "exclude")
    if spec is None or isinstance(resolve_source(getattr(data_cfg, split), data_cfg.data_dir), HubSource):
        return frozenset()
    path = DUPLICATES_FILE if spec == "duplicates" else Path(spec).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"data.exclude: no list of books at {path} (a CSV with columns split, id)")
    import pandas as pd

    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"split", "id"} - set(table.columns)
    if missing:
        raise ValueError(f"data.exclude: {path} lacks the column(s) {sorted(missing)} (needs split, id)")
    return frozenset(table.loc[table["split"] == split, "id"])


def _sampling(split: str, data_cfg) -> tuple:
    """How ``split`` is read: ``("chunks", chunk_tokens, seed)`` or ``("head",)`` (also for a split
    not in ``data.sample_splits``). A hub corpus
    is always read ``"head"``: its documents are already a sample of the web, and sampling in
    chunks would mean tokenising all of it. The seed is ``[sample_seed, split number]``, so the
    splits draw independently."""
    sample = _opt(data_cfg, "sample")
    if sample not in SAMPLES:
        from .settings import ConfigError

        raise ConfigError(f"data.sample must be one of {SAMPLES}, got {sample!r}")
    if (sample == "head" or split not in _opt(data_cfg, "sample_splits")
            or isinstance(resolve_source(getattr(data_cfg, split), data_cfg.data_dir), HubSource)):
        return ("head",)
    return ("chunks", int(_opt(data_cfg, "chunk_tokens")), (int(_opt(data_cfg, "sample_seed")), SPLITS.index(split)))


def load_corpus_tokens(split: str, data_cfg, progress: bool = True, verify: bool = False) -> np.ndarray:
    """The tokens of ``split`` as a read-only uint16 memmap, tokenising on first use.

    ``verify=True`` re-computes the file's checksum against its manifest.
    """
    from .processes import process_state

    tokenizer = profile_tokenizer(data_cfg, progress=progress)
    path = token_cache_path(split, data_cfg, tokenizer)
    manifest_path = path.with_suffix(".json")
    with process_state().main_process_first():  # with several processes, one tokenises
        _ensure_tokenized(split, data_cfg, tokenizer, path, manifest_path, progress, verify)
    return np.memmap(path, dtype=np.uint16, mode="r")


class TokenCacheError(ValueError):
    """A cached token file does not match its manifest (truncated, replaced or corrupt)."""


def _check_cache(path: Path, manifest: dict, verify: bool) -> str | None:
    """Why the cached ``path`` cannot be trusted, or ``None`` if it matches its manifest: its size
    must be exactly ``n_tokens`` uint16 values (a truncated file never passes) and, with
    ``verify``, its SHA-256 must match."""
    size = path.stat().st_size
    expected = int(manifest.get("n_tokens", -1)) * np.dtype(np.uint16).itemsize
    if size != expected:
        return f"{size:,} bytes, but its manifest records {manifest.get('n_tokens')} tokens ({expected:,} bytes)"
    if verify and file_sha256(path) != manifest.get("sha256"):
        return "its checksum does not match its manifest"
    return None


def _ensure_tokenized(
    split, data_cfg, tokenizer, path: Path, manifest_path: Path, progress: bool, verify: bool
) -> None:
    if path.exists() and manifest_path.exists():
        try:
            manifest = json.loads(manifest_path.read_text())
        except ValueError:
            manifest = {}
        problem = _check_cache(path, manifest, verify)
        if problem is None:
            return
        if verify:
            raise TokenCacheError(
                f"token cache {path} does not match its manifest ({problem}); delete it to re-tokenise"
            )
        import warnings

        warnings.warn(f"token cache {path} is unusable ({problem}); re-tokenising", stacklevel=3)
    source = resolve_source(getattr(data_cfg, split), data_cfg.data_dir)
    sampling = _sampling(split, data_cfg)
    manifest = tokenize_corpus(
        source, path, tokenizer, data_cfg.text_field, getattr(data_cfg, f"{split}_max_tokens"), progress=progress,
        exclude=excluded_ids(split, data_cfg), sample=sampling[0],
        **({"chunk_tokens": sampling[1], "seed": list(sampling[2])} if sampling[0] == "chunks" else {}),
    )
    manifest["split"] = split
    manifest["exclude"] = _opt(data_cfg, "exclude")
    write_json_atomic(manifest_path, manifest)


def corpus_manifest(split: str, data_cfg) -> dict:
    """The manifest of a cached split (tokenising it first if needed)."""
    load_corpus_tokens(split, data_cfg, progress=False)
    return json.loads(token_cache_path(split, data_cfg).with_suffix(".json").read_text())


def _manifest(split_or_manifest, data_cfg) -> dict:
    return split_or_manifest if isinstance(split_or_manifest, dict) else corpus_manifest(split_or_manifest, data_cfg)


def token_books(split: str | dict, data_cfg=None) -> np.ndarray:
    """The document (book) index of every token of the cached ``split`` (int32; the ``index``
    of :func:`book_table`), from its manifest's ``segments`` (``split`` may be that manifest).
    What per-book validation losses group by: window ``i`` of the perplexity evaluation starts at
    token ``i * T``, so its book is ``token_books(...)[i * T]``."""
    manifest = _manifest(split, data_cfg)
    out = np.full(int(manifest["n_tokens"]), -1, dtype=np.int32)
    for start, length, doc in manifest.get("segments", []):
        out[start: start + length] = doc
    if (out < 0).any():
        which = manifest.get("split", split if isinstance(split, str) else "")
        raise TokenCacheError(f"the token cache's manifest ({which}) does not say which book every token comes "
                              "from; delete the cache to re-tokenise")
    return out


def book_table(split: str | dict, data_cfg=None):
    """The books read for the cached ``split`` (or from its manifest): ``index`` (line in the
    corpus file), ``id``, ``title``, ``n_tokens`` (tokens of the split from that book, inserted
    EOTs included; 0 for a book none of whose chunks was drawn) and ``doc_tokens`` (the book's
    whole tokenised length)."""
    import pandas as pd

    manifest = _manifest(split, data_cfg)
    n = (pd.DataFrame(manifest.get("segments", []), columns=["start", "length", "index"])
         .groupby("index")["length"].sum())
    t = pd.DataFrame(manifest.get("documents", []), columns=["index", "id", "title", "tokens"])
    t = t.rename(columns={"tokens": "doc_tokens"})
    t["n_tokens"] = t["index"].map(n).fillna(0).astype(int)
    return t[["index", "id", "title", "n_tokens", "doc_tokens"]]


# --------------------------------------------------------------------------------------------
# batches


SAMPLING_MODES = ("sequential", "shuffled", "random")


@dataclass
class BatchSampler:
    """Which windows of ``seq_len + 1`` tokens make each training batch.

    Sample number ``s`` of a run (counting every sequence of every micro-batch and process, in
    order, starting ``offset`` iterations into the stream) is read from window ``w(s)``:

    * ``sequential`` -- ``w(s) = s mod n_windows`` over consecutive windows ``[i*T, i*T + T + 1)``:
      the corpus read forward, wrapping only when it is exhausted (the official loader);
    * ``shuffled`` -- the same windows in a seeded random permutation per pass over the corpus;
    * ``random`` -- independent uniform offsets per batch (windows may overlap and repeat).

    ``offset`` is how many iterations of this stream earlier runs consumed: the outer loop's
    generation ``g`` starts at ``g * iters`` and so trains on fresh tokens.
    """

    tokens: np.ndarray
    seq_len: int
    batch_size: int
    seed: int
    mode: str = "sequential"
    offset: int = 0
    grad_accum: int = 1
    world_size: int = 1

    def __post_init__(self) -> None:
        if self.mode not in SAMPLING_MODES:
            raise ValueError(f"sampling must be one of {SAMPLING_MODES}, got {self.mode!r}")
        self.n_windows = (len(self.tokens) - 1) // self.seq_len
        if self.n_windows < 1:
            raise ValueError(f"corpus of {len(self.tokens)} tokens is too short for windows of {self.seq_len + 1}")
        self._perms: dict[int, np.ndarray] = {}

    def _sample_index(self, iteration: int, micro_step: int, rank: int) -> int:
        it = self.offset + iteration
        return ((it * self.grad_accum + micro_step) * self.world_size + rank) * self.batch_size

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) > 2:
                self._perms.clear()
            self._perms[epoch] = np.random.default_rng([self.seed, epoch]).permutation(self.n_windows)
        return self._perms[epoch]

    def starts(self, iteration: int, micro_step: int = 0, rank: int = 0) -> np.ndarray:
        """Start offsets (token positions) of the batch's windows."""
        if self.mode == "random":
            return window_offsets(len(self.tokens), self.seq_len, self.batch_size, self.seed,
                                  self.offset + iteration, micro_step, rank)
        s = self._sample_index(iteration, micro_step, rank) + np.arange(self.batch_size)
        if self.mode == "sequential":
            w = s % self.n_windows
        else:
            epochs, pos = np.divmod(s, self.n_windows)
            w = np.array([self._permutation(int(e))[p] for e, p in zip(epochs, pos)])
        return w * self.seq_len

    def batch(self, iteration: int, micro_step: int = 0, rank: int = 0) -> torch.Tensor:
        """A (batch_size, seq_len + 1) LongTensor; inputs = [:, :-1], targets = [:, 1:]."""
        offs = self.starts(iteration, micro_step, rank)
        return torch.from_numpy(
            np.stack([np.asarray(self.tokens[o : o + self.seq_len + 1], dtype=np.int64) for o in offs])
        )

    def coverage(self, iterations: int, vocab_size: int | None = None) -> dict:
        """What ``iterations`` iterations of this run read: target tokens, how many *distinct*
        corpus positions they cover, the share of the corpus that is, and (when the covered
        positions number at most 50M) how many vocabulary types occur among them."""
        per_iter = self.grad_accum * self.world_size * self.batch_size
        n_targets = iterations * per_iter * self.seq_len
        out = {"sampling": self.mode, "offset_iters": self.offset, "target_tokens": int(n_targets),
               "corpus_tokens": int(len(self.tokens))}
        if self.mode == "random":
            seen = np.zeros(len(self.tokens), dtype=bool)
            for it in range(iterations):
                for micro in range(self.grad_accum):
                    for rank in range(self.world_size):
                        for o in self.starts(it, micro, rank):
                            seen[o + 1 : o + self.seq_len + 1] = True
            distinct = int(seen.sum())
            positions = lambda: np.flatnonzero(seen)  # noqa: E731
        else:  # windows' targets [w*T + 1, w*T + T] are disjoint: count distinct windows
            s = self.offset * per_iter + np.arange(iterations * per_iter, dtype=np.int64)
            if self.mode == "sequential":
                w = s % self.n_windows
            else:
                epochs, pos = np.divmod(s, self.n_windows)
                w = (np.concatenate([self._permutation(int(e))[pos[epochs == e]] for e in np.unique(epochs)])
                     if len(s) else s)
            windows = np.unique(w)
            distinct = int(len(windows)) * self.seq_len
            positions = lambda: (windows[:, None] * self.seq_len + np.arange(1, self.seq_len + 1)).reshape(-1)  # noqa: E731
        out["distinct_tokens"] = distinct
        out["corpus_fraction"] = round(distinct / len(self.tokens), 6)
        if vocab_size and distinct <= 50_000_000:
            types = np.unique(np.asarray(self.tokens)[positions()])
            out["vocab_types_seen"] = int(len(types))
            out["vocab_fraction_seen"] = round(len(types) / vocab_size, 6)
        return out


def window_offsets(
    n_tokens: int, seq_len: int, batch_size: int, seed: int, iteration: int, micro_step: int = 0, rank: int = 0
) -> np.ndarray:
    """Start offsets of a ``random``-mode batch: a pure function of its coordinates (resumable)."""
    high = n_tokens - seq_len - 1
    if high <= 0:
        raise ValueError(f"corpus of {n_tokens} tokens is too short for windows of {seq_len + 1}")
    rng = np.random.default_rng([seed, iteration, micro_step, rank])
    return rng.integers(0, high + 1, size=batch_size)


def unigram_entropy(tokens: np.ndarray) -> float:
    """Entropy (nats per token) of the token distribution of ``tokens``: the loss of a model that
    knows only how often each token occurs in this very corpus. A language model that has
    learned anything beyond token frequencies goes well below it."""
    counts = np.bincount(np.asarray(tokens, dtype=np.int64))
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


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
