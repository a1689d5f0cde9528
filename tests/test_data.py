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


# ------------------------------------------------------------ books: exclusion, chunk sampling, provenance
from connectome_lib.config import DataConfig  # noqa: E402
from connectome_lib.settings import ConfigError  # noqa: E402

WORDS = (900, 120, 1500, 80, 400)  # five books of very different lengths (~3600 to ~320 tokens)


def _books(tmp_path, words=WORDS, name="books.jsonl"):
    """Fake books whose words are their own ("b2w5"), so every token tells its book; returns the
    corpus path and every book's own tokenisation (with its EOT)."""
    tok = load_tokenizer()
    corpus, own = tmp_path / name, []
    with open(corpus, "w") as f:
        for i, n in enumerate(words):
            text = " ".join(f"b{i}w{j % 11}" for j in range(n))
            f.write(json.dumps({"id": f"id{i}", "title": f"Book {i}", "text": text}) + "\n")
            own.append(np.asarray(tok(text)["input_ids"] + [EOT_TOKEN_ID], dtype=np.int64))
    return corpus, own


def _book_cfg(tmp_path, corpus, **kw):
    cfg = _cfg(tmp_path, corpus)
    cfg.exclude, cfg.sample, cfg.chunk_tokens, cfg.sample_seed = None, "chunks", 32, 0
    cfg.inner_max_tokens = 32 * 80  # a fifth of the stream: strata of ~5 chunks, shorter than every book
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def _is_run_of(seg: np.ndarray, doc: np.ndarray) -> bool:
    """``seg`` is a contiguous run of ``doc``'s tokens."""
    n = len(seg)
    return any(np.array_equal(doc[i: i + n], seg) for i in range(len(doc) - n + 1))


def _check_provenance(tokens, manifest, own) -> None:
    """Every segment is a run of its own book's tokens (plus, at most, one inserted EOT at its
    end), and token_books agrees with the segments."""
    from connectome_lib.data import token_books

    books = token_books(manifest)
    assert books.dtype == np.int32 and len(books) == len(tokens) == manifest["n_tokens"]
    pos = 0
    for start, length, doc in manifest["segments"]:
        assert start == pos and length > 0 and (books[start: start + length] == doc).all()
        seg = np.asarray(tokens[start: start + length], dtype=np.int64)
        assert _is_run_of(seg, own[doc]) or (seg[-1] == EOT_TOKEN_ID and _is_run_of(seg[:-1], own[doc])), doc
        pos += length
    assert pos == len(tokens)


def test_chunks_sample_every_book_in_proportion_and_every_token_maps_to_its_book(tmp_path):
    from connectome_lib.data import _chunk_ranges, book_table, corpus_manifest

    corpus, own = _books(tmp_path)
    stream = np.concatenate(own)
    cfg = _book_cfg(tmp_path, corpus)
    tokens = np.asarray(load_corpus_tokens("inner", cfg, progress=False), dtype=np.int64)
    m = corpus_manifest("inner", cfg)
    assert m["sample"] == "chunks" and m["stream_tokens"] == len(stream) > 2 * cfg.inner_max_tokens
    # exactly the budget of corpus tokens, plus one EOT per discontinuity, never more
    assert m["chunks"] == {"stream": -(-len(stream) // 32), "kept": 80} and m["n_discontinuities"] >= 1
    assert len(tokens) == cfg.inner_max_tokens + m["n_discontinuities"]
    # the file is the stream's kept ranges, an EOT between two that are not contiguous
    ranges, _ = _chunk_ranges(len(stream), cfg.inner_max_tokens, 32, np.random.default_rng([0, 1]))
    expected = [stream[lo:hi] for lo, hi in ranges]
    expected = np.concatenate([x for r in expected[:-1] for x in (r, [EOT_TOKEN_ID])] + [expected[-1]])
    assert np.array_equal(tokens, expected) and len(ranges) == m["n_discontinuities"] + 1
    assert all(a[1] < b[0] for a, b in zip(ranges, ranges[1:]))  # in corpus order, gaps between them
    _check_provenance(tokens, m, own)
    # every book is read, each in proportion to its length (to within a few chunks)
    table = book_table("inner", cfg)
    assert list(table["id"]) == [f"id{i}" for i in range(5)] and list(table["index"]) == list(range(5))
    assert list(table["title"]) == [f"Book {i}" for i in range(5)] and table["n_tokens"].sum() == len(tokens)
    assert list(table["doc_tokens"]) == [len(d) for d in own]
    assert (table["n_tokens"] > 0).all() and m["n_documents"] == 5
    share = table["doc_tokens"] / table["doc_tokens"].sum() * cfg.inner_max_tokens
    assert (abs(table["n_tokens"] - share) <= 3 * 32 + table["n_tokens"] / 32 + 1).all(), table  # + markers


def test_chunk_sampling_is_seeded(tmp_path):
    corpus, own = _books(tmp_path)
    cfg = _book_cfg(tmp_path, corpus)
    first = np.asarray(load_corpus_tokens("inner", cfg, progress=False)).copy()
    path = token_cache_path("inner", cfg)
    path.unlink()
    assert np.array_equal(np.asarray(load_corpus_tokens("inner", cfg, progress=False)), first)  # same seed
    cfg.sample_seed = 1
    assert token_cache_path("inner", cfg) != path
    other = np.asarray(load_corpus_tokens("inner", cfg, progress=False))
    assert not (len(other) == len(first) and np.array_equal(other, first))  # another seed, other chunks
    cfg.sample_seed, cfg.val_max_tokens = 0, cfg.inner_max_tokens  # the splits draw independently
    val = np.asarray(load_corpus_tokens("val", cfg, progress=False))
    assert not (len(val) == len(first) and np.array_equal(val, first))


def test_chunk_ranges_stratified_and_exact():
    from connectome_lib.data import _chunk_ranges

    for total, budget, chunk in [(10_000, 1000, 64), (10_000, 1000, 100), (1001, 1000, 10), (999, 500, 1000)]:
        for seed in range(5):
            ranges, counts = _chunk_ranges(total, budget, chunk, np.random.default_rng(seed))
            assert sum(hi - lo for lo, hi in ranges) == min(budget, total)
            assert all(0 <= lo < hi <= total for lo, hi in ranges)
            assert all(a[1] < b[0] for a, b in zip(ranges, ranges[1:]))  # sorted, merged, disjoint
            assert all(lo % chunk == 0 for lo, _ in ranges)  # chunks start on the chunk grid
            assert counts == {"stream": -(-total // chunk), "kept": min(counts["stream"], -(-budget // chunk))}
    # one chunk from each stratum: a stratum of the stream is never skipped
    ranges, _ = _chunk_ranges(64 * 100, 64 * 10, 64, np.random.default_rng(3))
    kept = {lo // 64 + k for lo, hi in ranges for k in range((hi - lo) // 64)}
    assert sorted(c // 10 for c in kept) == list(range(10))


def test_everything_is_kept_when_the_budget_allows_and_head_is_the_old_loader(tmp_path):
    from connectome_lib.data import book_table, corpus_manifest, token_books

    corpus, own = _books(tmp_path)
    stream = np.concatenate(own)
    for limit in (None, len(stream), len(stream) + 5):
        cfg = _book_cfg(tmp_path, corpus, inner_max_tokens=limit)
        tokens = np.asarray(load_corpus_tokens("inner", cfg, progress=False))
        assert np.array_equal(tokens, stream) and corpus_manifest("inner", cfg)["n_discontinuities"] == 0
        _check_provenance(tokens, corpus_manifest("inner", cfg), own)
    # "head": the first max_tokens tokens of the documents in file order (the previous behaviour)
    cfg = _book_cfg(tmp_path, corpus, sample="head", inner_max_tokens=len(own[0]) + 10)
    head = np.asarray(load_corpus_tokens("inner", cfg, progress=False))
    assert np.array_equal(head, stream[: len(own[0]) + 10])
    assert set(token_books("inner", cfg).tolist()) == {0, 1} and list(book_table("inner", cfg)["n_tokens"]) == [
        len(own[0]), 10]
    assert corpus_manifest("inner", cfg)["sample"] == "head"
    assert token_cache_path("inner", cfg) != token_cache_path("inner", _book_cfg(
        tmp_path, corpus, inner_max_tokens=len(own[0]) + 10))  # the sampling is part of the cache key


def test_excluded_books_are_left_out_and_change_the_cache_key(tmp_path):
    import pandas as pd

    from connectome_lib.data import book_table, corpus_manifest, excluded_ids

    corpus, own = _books(tmp_path)
    cfg = _book_cfg(tmp_path, corpus, outer_max_tokens=None)
    before = token_cache_path("outer", cfg)
    drop = tmp_path / "drop.csv"
    pd.DataFrame({"split": ["outer", "inner", "outer"], "id": ["id2", "id0", "nope"],
                  "title": ["Book 2", "Book 0", "?"]}).to_csv(drop, index=False)
    cfg.exclude = str(drop)
    assert excluded_ids("outer", cfg) == {"id2", "nope"} and excluded_ids("inner", cfg) == {"id0"}
    assert token_cache_path("outer", cfg) != before
    tokens = np.asarray(load_corpus_tokens("outer", cfg, progress=False))
    assert np.array_equal(tokens, np.concatenate([own[i] for i in (0, 1, 3, 4)]))
    m = corpus_manifest("outer", cfg)
    assert m["excluded"] == ["id2"] and m["n_excluded"] == 1 and m["exclude"] == str(drop)
    table = book_table("outer", cfg)
    assert list(table["id"]) == ["id0", "id1", "id3", "id4"] and list(table["index"]) == [0, 1, 3, 4]
    _check_provenance(tokens, m, own)  # indices are the books' lines in the file
    # a changed list is a new cache key; records without ids are never excluded
    listed = token_cache_path("outer", cfg)
    pd.DataFrame({"split": ["outer"], "id": ["id3"]}).to_csv(drop, index=False)
    assert token_cache_path("outer", cfg) not in (before, listed) and excluded_ids("outer", cfg) == {"id3"}
    bare = tmp_path / "bare.jsonl"
    with open(bare, "w") as f:
        f.write(json.dumps({"text": "one"}) + "\n" + json.dumps({"text": "two"}) + "\n")
    pd.DataFrame({"split": ["outer"], "id": ["0"]}).to_csv(drop, index=False)
    cfg = _book_cfg(tmp_path, bare, exclude=str(drop))
    assert corpus_manifest("outer", cfg)["n_excluded"] == 0 and corpus_manifest("outer", cfg)["n_documents"] == 2
    cfg.exclude = str(tmp_path / "missing.csv")
    with pytest.raises(FileNotFoundError, match="data.exclude"):
        token_cache_path("outer", cfg)


def test_the_duplicates_list_is_the_default_and_applies_to_the_shared_corpora():
    import pandas as pd

    from connectome_lib.config import load_profile
    from connectome_lib.data import DUPLICATES_FILE, excluded_ids

    assert DataConfig().exclude == "duplicates" and DataConfig().sample == "chunks"
    listed = pd.read_csv(DUPLICATES_FILE, dtype=str)
    cfg = load_profile("cpu").data
    for split in ("outer", "inner", "val"):
        assert excluded_ids(split, cfg) == set(listed.loc[listed["split"] == split, "id"])
    assert excluded_ids("val", cfg) == frozenset() and excluded_ids("outer", DataConfig()) == frozenset()  # hub


def test_bad_sampling_settings_are_one_line_config_errors(tmp_path):
    from connectome_lib.config import load_profile

    for bad in ("random", "Chunks", ""):
        with pytest.raises(ConfigError, match=r"^data\.sample must be one of") as e:
            DataConfig(sample=bad).check()
        assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="data.sample"):
        load_profile("cpu", {"data.sample": "chunk"})
    with pytest.raises(ConfigError, match="data.chunk_tokens"):
        DataConfig(chunk_tokens=0).check()
    corpus, _ = _books(tmp_path)
    with pytest.raises(ConfigError, match="data.sample"):  # an unchecked configuration object
        token_cache_path("inner", _book_cfg(tmp_path, corpus, sample="tail"))


def test_head_sampling_writes_as_it_reads_and_never_holds_the_stream(tmp_path, monkeypatch):
    """At the paper's scale (billions of tokens) "head" must not concatenate the corpus in memory:
    it writes every document as it is tokenised; the file and its provenance are unchanged."""
    from connectome_lib import data as data_mod
    from connectome_lib.data import corpus_manifest

    corpus, own = _books(tmp_path)
    stream = np.concatenate(own)

    def refuse(*args, **kwargs):
        raise AssertionError("head sampling concatenated the token stream")

    monkeypatch.setattr(data_mod.np, "concatenate", refuse)
    cfg = _book_cfg(tmp_path, corpus, sample="head", inner_max_tokens=None)
    tokens = np.asarray(load_corpus_tokens("inner", cfg, progress=False))
    monkeypatch.undo()
    assert np.array_equal(tokens, stream)
    _check_provenance(tokens, corpus_manifest("inner", cfg), own)
