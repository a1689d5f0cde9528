"""Tokenizers: GPT-2's from the data folder, and the byte-level BPE trained on the outer corpus."""

import json
import lzma
from types import SimpleNamespace

import numpy as np
import pytest

from connectome_lib.data import load_corpus_tokens
from connectome_lib.tokenizer import (
    EOT_TOKEN_ID,
    TokenizerError,
    bpe_folder,
    load_tokenizer,
    profile_tokenizer,
    tokenizer_source,
    train_bpe,
)

TEXTS = [
    "The quick brown fox jumps over the lazy dog. " * 3,
    "It was the best of times, it was the worst of times; it was the age of wisdom.",
    "Call me Ishmael. Some years ago, never mind how long precisely, I went to sea.",
] * 20


def _corpus(tmp_path):
    path = tmp_path / "outer.jsonl.xz"
    with lzma.open(path, "wt") as f:
        for i, t in enumerate(TEXTS):
            f.write(json.dumps({"id": i, "text": t}) + "\n")
    return SimpleNamespace(
        data_dir=None, cache_dir=str(tmp_path / "cache"), tokenizer="bpe", outer=str(path), inner=str(path),
        val=str(path), text_field="text", outer_max_tokens=None, inner_max_tokens=None, val_max_tokens=None,
        bpe_vocab_size=300, bpe_train_chars=100_000,
    )


def test_gpt2_is_the_default():
    tok = load_tokenizer()
    assert tok.eos_token_id == EOT_TOKEN_ID and tok.pad_token_id == EOT_TOKEN_ID and len(tok) == 50257


def test_trained_bpe_is_cached_deterministic_and_gpt2_like(tmp_path):
    cfg = _corpus(tmp_path)
    tok = profile_tokenizer(cfg, progress=False)
    folder = bpe_folder(cfg)
    assert tokenizer_source(cfg) == str(folder)
    assert (folder / "tokenizer.json").exists() and (folder / "tokenizer_config.json").exists()
    assert len(tok) == 300 and tok.eos_token == "<|endoftext|>" and tok.eos_token_id == 0 == tok.pad_token_id
    text = "It was the age of foolishness, the quick fox."
    enc = tok(text, return_offsets_mapping=True, add_special_tokens=False)
    assert tok.decode(enc["input_ids"]) == text  # byte-level: lossless
    # offsets cover the text without gaps, as GPT-2's (leading spaces belong to the next token)
    assert enc["offset_mapping"][0][0] == 0 and enc["offset_mapping"][-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in zip(enc["offset_mapping"], enc["offset_mapping"][1:]))
    # training again on the same text gives the same vocabulary and merges
    again = train_bpe([t[: cfg.bpe_train_chars] for t in TEXTS], 300)
    assert again.get_vocab() == tok.get_vocab()
    # the cache is reused (no retraining), and the token files use the trained tokenizer's EOT
    mtime = (folder / "manifest.json").stat().st_mtime
    tokens = load_corpus_tokens("outer", cfg, progress=False)
    assert (folder / "manifest.json").stat().st_mtime == mtime
    assert int(tokens[-1]) == 0 and int(np.max(tokens)) < 300
    assert (tokens == 0).sum() == len(TEXTS)  # one <|endoftext|> per document
    # a different vocabulary size is another tokenizer, in another folder
    cfg.bpe_vocab_size = 320
    assert bpe_folder(cfg) != folder


def test_bpe_needs_its_corpus():
    with pytest.raises(TokenizerError, match="profile_tokenizer"):
        load_tokenizer("bpe")
    with pytest.raises(TokenizerError, match="more than 257"):
        train_bpe(["abc"], 100)
