"""Corpora: tokenisation cache with manifest, batches, missing-data errors."""

import json
import lzma
from types import SimpleNamespace

import numpy as np
import pytest

from connectome_lib.data import (
    BatchSampler,
    load_corpus_tokens,
    resolve_source,
    token_cache_path,
    validation_batches,
    window_offsets,
)
from connectome_lib.paths import DataMissingError, data_path
from connectome_lib.tokenizer import EOT_TOKEN_ID, load_tokenizer


def _cfg(tmp_path, outer):
    return SimpleNamespace(data_dir=None, cache_dir=str(tmp_path / "cache"), tokenizer=None, outer=str(outer),
                           inner=str(outer), val=str(outer), text_field="text",
                           outer_max_tokens=None, inner_max_tokens=None, val_max_tokens=7)


def _write_corpus(path, texts):
    opener = lzma.open if str(path).endswith(".xz") else open
    with opener(path, "wt") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"id": i, "text": t}) + "\n")


def test_tokenise_with_manifest_and_eot_separators(tmp_path):
    corpus = tmp_path / "c.jsonl.xz"
    _write_corpus(corpus, ["Hello world.", "A second document here."])
    cfg = _cfg(tmp_path, corpus)
    tokens = load_corpus_tokens("outer", cfg, progress=False)
    tok = load_tokenizer()
    expected = (tok("Hello world.")["input_ids"] + [EOT_TOKEN_ID]
                + tok("A second document here.")["input_ids"] + [EOT_TOKEN_ID])
    assert tokens.dtype == np.uint16 and tokens.tolist() == expected
    manifest = json.loads(token_cache_path("outer", cfg).with_suffix(".json").read_text())
    assert manifest["n_tokens"] == len(expected) and manifest["n_documents"] == 2
    assert manifest["source"].endswith("c.jsonl.xz") and len(manifest["sha256"]) == 64
    # a token limit is honoured
    assert len(load_corpus_tokens("val", cfg, progress=False)) == 7
    # verified reuse, and a changed corpus is re-tokenised (new cache key)
    load_corpus_tokens("outer", cfg, progress=False, verify=True)
    old = token_cache_path("outer", cfg)
    import os
    import time
    _write_corpus(corpus, ["Changed."])
    os.utime(corpus, (time.time() + 5, time.time() + 5))
    assert token_cache_path("outer", cfg) != old
    assert load_corpus_tokens("outer", cfg, progress=False).tolist() == tok("Changed.")["input_ids"] + [EOT_TOKEN_ID]


def test_corrupt_cache_detected(tmp_path):
    corpus = tmp_path / "c.jsonl"
    _write_corpus(corpus, ["Some text to tokenise."])
    cfg = _cfg(tmp_path, corpus)
    load_corpus_tokens("outer", cfg, progress=False)
    path = token_cache_path("outer", cfg)
    data = bytearray(path.read_bytes())
    data[0] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        load_corpus_tokens("outer", cfg, progress=False, verify=True)


def test_missing_data_names_file_and_source(tmp_path):
    with pytest.raises(DataMissingError) as e:
        data_path("hellaswag", tmp_path)
    msg = str(e.value)
    assert "hellaswag_val.jsonl" in msg and "rowanz/hellaswag" in msg and "CONNECTOME_DATA_DIR" in msg
    with pytest.raises(DataMissingError, match="not found"):
        resolve_source(str(tmp_path / "nope.jsonl"))


def test_default_data_dir_is_shared_data():
    assert data_path("corpus_outer").exists()


def test_batches_are_pure_functions_of_their_coordinates():
    tokens = np.arange(1000, dtype=np.uint16)
    sampler = BatchSampler(tokens, 16, 4, seed=1, mode="random")
    a = sampler.batch(5)
    assert a.shape == (4, 17) and (a[:, 1:] - a[:, :-1] == 1).all()
    assert (a == BatchSampler(tokens, 16, 4, seed=1, mode="random").batch(5)).all()
    assert not (a == sampler.batch(6)).all()
    assert not np.array_equal(window_offsets(1000, 16, 4, 1, 5, rank=0), window_offsets(1000, 16, 4, 1, 5, rank=1))
    val = validation_batches(tokens, 16, 4, 3)
    assert len(val) == 3 and val[0][0, 0] == 0 and val[0][1, 0] == 16
    with pytest.raises(ValueError, match="too short"):
        BatchSampler(np.arange(10, dtype=np.uint16), 16, 2, 0, "random").batch(0)


# ---------------------------------------------------------------------------- batch sampling
import torch  # noqa: E402

from connectome_lib.data import unigram_entropy  # noqa: E402


@pytest.mark.parametrize("mode", ["sequential", "shuffled", "random"])
def test_batches_are_a_pure_function_of_the_iteration(mode):
    tokens = np.arange(10_000, dtype=np.uint16)
    a = BatchSampler(tokens, 16, 4, seed=3, mode=mode, offset=5, grad_accum=2)
    b = BatchSampler(tokens, 16, 4, seed=3, mode=mode, offset=5, grad_accum=2)
    for it in (0, 7, 3):
        assert torch.equal(a.batch(it, 1), b.batch(it, 1))
    batch = a.batch(2)
    assert batch.shape == (4, 17)
    assert torch.equal(batch[:, 1:], batch[:, :-1] + 1)  # consecutive tokens of the corpus


@pytest.mark.parametrize("mode", ["sequential", "shuffled"])
def test_generations_read_fresh_windows_until_the_corpus_is_exhausted(mode):
    tokens = np.arange(64 * 100 + 1, dtype=np.uint16)  # exactly 100 windows of 64 targets
    seen = []
    for g in range(4):  # 4 "generations" of 5 iterations x 5 sequences = 25 windows each
        s = BatchSampler(tokens, 64, 5, seed=0, mode=mode, offset=g * 5)
        seen.append({int(o) for it in range(5) for o in s.starts(it)})
        cov = s.coverage(5, vocab_size=None)
        assert cov["target_tokens"] == cov["distinct_tokens"] == 25 * 64
    assert all(not (seen[i] & seen[j]) for i in range(4) for j in range(i))  # no window repeats
    assert len(set().union(*seen)) == 100  # one full pass
    wrapped = BatchSampler(tokens, 64, 5, seed=0, mode=mode, offset=0).coverage(30)
    assert wrapped["distinct_tokens"] == 100 * 64 and wrapped["corpus_fraction"] > 0.99


def test_random_mode_with_offset_zero_is_the_previous_behaviour():
    tokens = np.arange(5000, dtype=np.uint16)
    old = window_offsets(len(tokens), 32, 6, 11, 4, 1, 0)
    assert np.array_equal(BatchSampler(tokens, 32, 6, 11, "random").starts(4, 1), old)
    batch = BatchSampler(tokens, 32, 6, 11, "random").batch(4, 1)
    assert torch.equal(batch, torch.stack([torch.arange(o, o + 33) for o in old]))
    cov = BatchSampler(tokens, 32, 6, 11, "random").coverage(3, vocab_size=5000)
    assert 0 < cov["distinct_tokens"] <= cov["target_tokens"] == 3 * 6 * 32
    assert cov["vocab_types_seen"] == cov["distinct_tokens"]  # every token of arange is its own type


def test_unigram_entropy():
    assert unigram_entropy(np.array([1, 1, 1, 1])) == 0.0
    assert abs(unigram_entropy(np.array([0, 1, 2, 3])) - np.log(4)) < 1e-12
    assert abs(unigram_entropy(np.array([5, 5, 7, 9])) - (-(0.5 * np.log(0.5) + 2 * 0.25 * np.log(0.25)))) < 1e-12


def test_truncated_token_cache_is_never_used(tmp_path):
    corpus = tmp_path / "c.jsonl"
    _write_corpus(corpus, ["Some text to tokenise, long enough to cut.", "And another document."])
    cfg = _cfg(tmp_path, corpus)
    full = load_corpus_tokens("outer", cfg, progress=False).tolist()
    path = token_cache_path("outer", cfg)
    path.write_bytes(path.read_bytes()[:-4])  # cut off two tokens, manifest unchanged
    with pytest.warns(UserWarning, match="unusable"):
        again = load_corpus_tokens("outer", cfg, progress=False).tolist()
    assert again == full  # re-tokenised, not the truncated file
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(ValueError, match="manifest"):
        load_corpus_tokens("outer", cfg, progress=False, verify=True)
