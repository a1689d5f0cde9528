"""Corpora: read through ``datasets``, tokenised once into cached uint16 token files.

A corpus is tokenised into one flat ``uint16`` array, documents separated by ``<|endoftext|>``,
stored as ``<cache_dir>/<split>-<key>.bin`` next to a manifest ``<...>.json`` that records the
source, the tokenizer, the number of tokens and the file's checksum. The cache key hashes the
source (and, for local files, their size and modification time), the tokenizer files and the
token limit, so a changed input is re-tokenised, never silently reused.

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

import numpy as np
import torch
from tqdm import tqdm

from .fingerprint import file_sha256
from .layout import write_json_atomic
from .sources import HubSource, LocalSource, iter_documents, resolve_source
from .tokenizer import profile_tokenizer

__all__ = ["SPLITS", "LocalSource", "HubSource", "resolve_source", "iter_documents", "tokenize_corpus",
           "token_cache_path", "load_corpus_tokens", "TokenCacheError", "corpus_manifest", "corpus_table",
           "BatchSampler", "window_offsets", "unigram_entropy", "validation_batches"]

SPLITS = ("outer", "inner", "val")


def _tokenizer_fingerprint(tokenizer) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(tokenizer.get_vocab(), sort_keys=True).encode())
    h.update(type(tokenizer).__name__.encode())
    return h.hexdigest()[:16]


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
                    arr = np.asarray(doc + [tokenizer.eos_token_id], dtype=np.uint16)
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
            raise ValueError(f"corpus {getattr(source, 'path', source.describe())} produced no tokens")
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
        "eot_token_id": tokenizer.eos_token_id,
        "vocab_size": len(tokenizer),
        "bytes": out_path.stat().st_size,
        "sha256": file_sha256(out_path),
        "seconds": round(time.time() - t0, 2),
    }


def token_cache_path(split: str, data_cfg, tokenizer=None) -> Path:
    """Where the tokenised ``split`` (outer/inner/val) of ``data_cfg`` is cached."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    source = resolve_source(getattr(data_cfg, split), data_cfg.data_dir)
    tokenizer = tokenizer or profile_tokenizer(data_cfg, progress=False)
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

    tokenizer = profile_tokenizer(data_cfg, progress=progress)
    path = token_cache_path(split, data_cfg, tokenizer)
    manifest_path = path.with_suffix(".json")
    with PartialState().main_process_first():  # with several processes, one tokenises
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
    manifest = tokenize_corpus(
        source, path, tokenizer, data_cfg.text_field, getattr(data_cfg, f"{split}_max_tokens"), progress=progress
    )
    manifest["split"] = split
    write_json_atomic(manifest_path, manifest)


def corpus_manifest(split: str, data_cfg) -> dict:
    """The manifest of a cached split (tokenising it first if needed)."""
    load_corpus_tokens(split, data_cfg, progress=False)
    return json.loads(token_cache_path(split, data_cfg).with_suffix(".json").read_text())


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
