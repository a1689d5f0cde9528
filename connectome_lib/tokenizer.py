"""Tokenizers: GPT-2's (the paper's), or a small byte-level BPE trained on the outer corpus.

The paper uses GPT-2's 50,257-token vocabulary. At CPU scale that vocabulary takes almost all of
a small model's parameters and compute (the embedding and head of a 2 x 64 model are 98.5 % of
it) and most of its rows never see a token, so the CPU profiles can instead train a byte-level
BPE of a few thousand tokens on the outer (evolution) corpus — the same algorithm as GPT-2's,
fewer merges. A trained tokenizer is cached under ``<cache_dir>/tokenizers/bpe-<key>/`` as an
ordinary ``transformers`` tokenizer folder (``tokenizer.json`` + ``tokenizer_config.json``);
its key hashes the corpus, the vocabulary size, the amount of training text and the
``tokenizers`` version, so a changed input trains a new one, never silently reuses the old.

Every tokenizer returned here has ``<|endoftext|>`` as its end-of-text *and* padding token;
code must use ``tokenizer.eos_token_id`` (50256 for GPT-2, 0 for a trained BPE).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from transformers import GPT2TokenizerFast, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from .jsonl import undecodable
from .paths import data_path
from .sources import LocalSource, iter_documents, resolve_source

EOT_TOKEN_ID = 50256  # GPT-2's <|endoftext|>
EOT = "<|endoftext|>"
#: the value of ``data.tokenizer`` that selects a BPE trained on the outer corpus
TRAINED_BPE = "bpe"


class TokenizerError(ValueError):
    """A tokenizer specification cannot be resolved (e.g. a trained BPE without its corpus)."""


class TokenizerNotFoundError(TokenizerError, FileNotFoundError):
    """A tokenizer given as a path names no folder (an ``OSError`` too, as a missing file is)."""


def _finish(tok: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    tok.model_max_length = int(1e9)  # we window ourselves; silence the 1024-token warning
    if tok.eos_token is None:
        tok.eos_token = EOT
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_tokenizer(
    source: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None, key: str = "tokenizer"
) -> PreTrainedTokenizerBase:
    """Load a tokenizer.

    ``source`` is ``None`` (GPT-2's files in the data directory, see :mod:`connectome_lib.paths`),
    a local folder (a ``tokenizer.json`` folder — e.g. a trained BPE or a saved model — or a
    folder holding GPT-2's ``vocab.json`` and ``merges.txt``), or a hub name such as ``"gpt2"``.
    ``"bpe"`` (a BPE trained on the outer corpus) needs the data configuration: use
    :func:`profile_tokenizer`. The tokenizer's ``pad_token`` is ``<|endoftext|>``. A folder
    without tokenizer files, or a path that does not exist, is a :class:`TokenizerError` that
    names the setting ``key`` (e.g. ``data.tokenizer``).
    """
    if source == TRAINED_BPE:
        raise TokenizerError(
            "tokenizer 'bpe' is trained on a profile's outer corpus: use "
            "connectome_lib.tokenizer.profile_tokenizer(profile.data), or pass the trained tokenizer's folder"
        )
    if source is None:
        return _finish(GPT2TokenizerFast.from_pretrained(str(data_path("tokenizer", data_dir))))
    folder = Path(source).expanduser()
    if folder.is_dir():
        if (folder / "tokenizer.json").exists():
            return _finish(PreTrainedTokenizerFast.from_pretrained(str(folder)))
        _require_gpt2_files(folder, key)
        return _finish(GPT2TokenizerFast.from_pretrained(str(folder)))
    if _looks_like_path(str(source)):
        raise TokenizerNotFoundError(f"{key} {str(source)!r}: no such folder; give a tokenizer folder (tokenizer.json, "
                                     "or vocab.json + merges.txt), a hub name such as gpt2, or null for GPT-2's")
    return _finish(GPT2TokenizerFast.from_pretrained(str(source)))  # hub name (needs a network)


def _looks_like_path(source: str) -> bool:
    """Whether a tokenizer source that is no folder was meant as a path, not a hub name
    (``owner/name``): absolute, relative to ``.``/``~``, or more than one ``/`` deep."""
    return source.startswith(("/", ".", "~")) or source.count("/") > 1 or os.sep != "/" and os.sep in source


def _require_gpt2_files(folder: Path, key: str) -> None:
    """Refuse a folder without tokenizer files: ``from_pretrained`` would build an empty
    tokenizer from it, which turns every text into no tokens at all."""
    missing = [f for f in ("vocab.json", "merges.txt") if not (folder / f).is_file()]
    if missing:
        raise TokenizerError(f"{key} {str(folder)!r} is a folder without a tokenizer: no tokenizer.json, and no "
                             f"{' or '.join(missing)}; give the folder a tokenizer was saved to")


# --------------------------------------------------------------------------------------------
# a byte-level BPE trained on the outer corpus


def train_bpe(texts, vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a GPT-2-style byte-level BPE with ``vocab_size`` tokens (``<|endoftext|>`` = id 0).

    Pre-tokenisation, decoding and offsets follow GPT-2's ``tokenizer.json`` (byte-level
    pre-tokenizer without a prefix space; offsets not trimmed), so word alignment by character
    offsets works exactly as with GPT-2. Training is deterministic for a given text stream.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    if vocab_size < 257 + 1:
        raise TokenizerError(f"a byte-level BPE needs more than 257 tokens (256 bytes + {EOT}), got {vocab_size}")
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tk.decoder = decoders.ByteLevel()
    tk.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[EOT], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator(texts, trainer=trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token=EOT, bos_token=EOT, unk_token=EOT, pad_token=EOT)
    return _finish(tok)


def _bpe_texts(data_cfg, max_chars: int):
    """The outer corpus's documents, in file order, until ``max_chars`` characters."""
    source = resolve_source(data_cfg.outer, data_cfg.data_dir)
    n = 0
    try:
        for text in iter_documents(source, data_cfg.text_field):
            if not text:
                continue
            take = text[: max_chars - n]
            yield take
            n += len(take)
            if n >= max_chars:
                return
    except UnicodeDecodeError as e:  # name the file and line (datasets names neither)
        if not isinstance(source, LocalSource):
            raise
        raise undecodable(source.path, e) from None


def bpe_folder(data_cfg) -> Path:
    """Where the BPE of ``data_cfg`` is (or will be) cached."""
    import tokenizers

    source = resolve_source(data_cfg.outer, data_cfg.data_dir)
    key = hashlib.sha256(
        f"{source.fingerprint()}|{data_cfg.text_field}|{data_cfg.bpe_vocab_size}|{data_cfg.bpe_train_chars}|"
        f"tokenizers={tokenizers.__version__}".encode()
    ).hexdigest()[:12]
    return Path(data_cfg.cache_dir) / "tokenizers" / f"bpe{data_cfg.bpe_vocab_size}-{key}"


def tokenizer_source(data_cfg, progress: bool = True) -> str | None:
    """What :func:`load_tokenizer` should load for ``data_cfg``: its ``tokenizer`` field, or,
    for ``"bpe"``, the folder of the trained BPE (training and caching it on first use)."""
    if data_cfg.tokenizer != TRAINED_BPE:
        return data_cfg.tokenizer
    folder = bpe_folder(data_cfg)
    if (folder / "tokenizer.json").exists() and (folder / "manifest.json").exists():
        return str(folder)
    from .processes import process_state

    with process_state().main_process_first():  # with several processes, one trains
        if not (folder / "manifest.json").exists():
            _train_and_cache(data_cfg, folder, progress)
    return str(folder)


def _train_and_cache(data_cfg, folder: Path, progress: bool) -> None:
    t0 = time.time()
    if progress:
        print(f"training a {data_cfg.bpe_vocab_size}-token byte-level BPE on the first "
              f"{data_cfg.bpe_train_chars:,} characters of {data_cfg.outer} ...", flush=True)
    texts = list(_bpe_texts(data_cfg, data_cfg.bpe_train_chars))
    tok = train_bpe(texts, data_cfg.bpe_vocab_size)
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tok.save_pretrained(str(tmp))
    vocab_sha = hashlib.sha256(json.dumps(tok.get_vocab(), sort_keys=True).encode()).hexdigest()
    (tmp / "manifest.json").write_text(json.dumps({
        "source": data_cfg.outer, "vocab_size": len(tok), "train_chars": sum(map(len, texts)),
        "train_documents": len(texts), "vocab_sha256": vocab_sha, "seconds": round(time.time() - t0, 2),
    }, indent=2, sort_keys=True))
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)


def profile_tokenizer(data_cfg, progress: bool = True) -> PreTrainedTokenizerBase:
    """The tokenizer a profile's data configuration names (GPT-2's by default)."""
    return load_tokenizer(tokenizer_source(data_cfg, progress), data_cfg.data_dir, key="data.tokenizer")
