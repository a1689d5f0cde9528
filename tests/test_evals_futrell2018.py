"""Futrell2018: data join, word/token alignment, sliding window, metrics, regression."""

import numpy as np
import pandas as pd
import pytest
import torch
from evals_helpers import tiny_connectome_gpt, tiny_gpt2, tokenizer

from connectome_lib.evals.futrell2018 import (
    evaluate_futrell2018,
    load_natural_stories,
    official_story_surprisals,
    official_token_word,
    reading_time_metrics,
    sentence_initial,
    story_surprisals,
    word_spans,
    word_token_map,
)
from connectome_lib.evals.results import TaskResult
from connectome_lib.evals.scoring import token_surprisals
from connectome_lib.paths import DataMissingError


def test_words_in_reading_order_with_rts():
    df = load_natural_stories()
    assert len(df) == 10256 and df["item"].nunique() == 10
    assert df["word"].iloc[:3].tolist() == ["If", "you", "were"]
    assert df.groupby("item")["zone"].apply(lambda z: z.is_monotonic_increasing).all()
    assert load_natural_stories(limit=2)["item"].nunique() == 2


def test_sentence_initial_words():
    words = pd.Series(["Hi", "there.", "Who", 'said "no!"', "Then", "(yes)."])
    assert sentence_initial(words).tolist() == [True, False, True, False, True, False]


def test_a_word_split_into_several_tokens_gets_the_sum():
    tok, model = tokenizer(), tiny_gpt2()
    words = ["The", "antidisestablishmentarianism", "of", "Zxqwv's", "friends."]
    ids, token_word = word_token_map(tok, words)
    assert np.bincount(token_word).tolist()[1] > 1 and len(ids) > len(words)
    surprisal, n_tokens = story_surprisals(model, tok, words)
    per_token = token_surprisals(model, [tok.eos_token_id] + ids) / np.log(2)
    for w in range(len(words)):
        assert surprisal[w] == pytest.approx(per_token[token_word == w].sum(), rel=1e-6)
    assert n_tokens.tolist() == np.bincount(token_word).tolist()


def test_sliding_window_equals_full_pass_when_the_story_fits():
    tok = tokenizer()
    words = load_natural_stories(limit=1)["word"].tolist()[:60]
    model = tiny_gpt2(n_positions=128)
    full, _ = story_surprisals(model, tok, words)
    small_stride, _ = story_surprisals(model, tok, words, stride=7)  # fits: stride irrelevant
    np.testing.assert_allclose(full, small_stride, rtol=1e-5)


def hand_surprisals(model, ids) -> np.ndarray:
    """Surprisal (nats) of ids[1:] from one unbatched forward pass (the official script's code)."""
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].double(), -1)
    return np.array([-float(logp[t - 1, ids[t]]) for t in range(1, len(ids))])


def test_official_surprisals_and_word_set_by_hand():
    tok, model = tokenizer(), tiny_gpt2()
    # "The" | " cat" | " sat" | "." : the first token is never scored, so "The" is left out
    ids = tok("The cat sat.")["input_ids"]
    assert len(ids) == 4
    s = hand_surprisals(model, ids)
    got = official_story_surprisals(model, tok, ["The", "cat", "sat."])
    assert np.isnan(got[0])
    np.testing.assert_allclose(got[1:], [s[0], s[1] + s[2]], rtol=1e-5)
    # "T" | "ul" | "ip" | " grew" | ... : a multi-token first word keeps its later tokens
    ids = tok("Tulip grew tall.")["input_ids"]
    assert tok.convert_ids_to_tokens(ids)[:3] == ["T", "ul", "ip"]
    s = hand_surprisals(model, ids)
    got = official_story_surprisals(model, tok, ["Tulip", "grew", "tall."])
    np.testing.assert_allclose(got, [s[0] + s[1], s[2], s[3] + s[4]], rtol=1e-5)


def test_official_midpoint_rule():
    spans = word_spans(["ab", "cde", "f"])  # "ab cde f"
    assert spans.tolist() == [[0, 2], [3, 6], [7, 8]]
    # a token (2, 4) = " c" has midpoint 3 -> word 1; a lone space (2, 3) -> none; (5, 5) empty -> none
    assert official_token_word([(0, 2), (2, 4), (2, 3), (5, 5), (4, 6), (6, 8)], spans).tolist() == [0, 1, -1, -1, 1, 2]


def test_official_word_set_on_the_corpus_is_10248_words():
    tok = tokenizer()
    kept = 0
    for _, story in load_natural_stories().groupby("item"):
        words = story["word"].tolist()
        enc = tok(" ".join(words), return_offsets_mapping=True)
        token_word = official_token_word(enc["offset_mapping"][1:], word_spans(words))
        kept += len(set(token_word[token_word >= 0].tolist()))
    assert kept == 10248


def test_official_sliding_window_equals_one_pass_when_the_story_fits():
    tok = tokenizer()
    words = load_natural_stories(limit=1)["word"].tolist()[:60]
    model = tiny_gpt2(n_positions=128)
    ids = tok(" ".join(words))["input_ids"]
    assert len(ids) < 128
    one_pass = official_story_surprisals(model, tok, words)
    strided = official_story_surprisals(model, tok, words, stride=7)
    np.testing.assert_allclose(one_pass, strided, rtol=1e-5)
    assert np.isnan(one_pass).sum() == 1 and np.isnan(one_pass[0])
    # without <|endoftext|> before it, the first scored token's surprisal differs from ours
    ours, _ = story_surprisals(model, tok, words)
    assert abs(one_pass[1] - ours[1] * np.log(2)) > 1e-3


def test_metrics_on_a_hand_made_table():
    table = pd.DataFrame({
        "surprisal_bits": [1.0, 2.0, 3.0, 4.0, 6.0], "rt": [300, 320, 330, 360, 400],
        "n_tokens": [1, 1, 2, 2, 3], "n_chars": [2, 3, 5, 6, 9],
        "sentence_initial": [True, False, False, True, False],
    })
    table["surprisal_official"] = [np.nan, 1.5, 2.5, 3.0, 7.0]
    res = TaskResult("futrell2018")
    reading_time_metrics(table, res)
    assert res.value("r") == pytest.approx(np.corrcoef(table.surprisal_bits, table.rt)[0, 1])
    assert res.value("r_official") == pytest.approx(np.corrcoef([1.5, 2.5, 3.0, 7.0], table.rt[1:])[0, 1])
    assert {m.metric: m.n for m in res.metrics}["r_official"] == 4
    keep = ~table.sentence_initial
    assert res.value("r_brainscore") == pytest.approx(np.corrcoef(table.surprisal_bits[keep], table.rt[keep])[0, 1])
    assert res.value("r_n_tokens") == pytest.approx(np.corrcoef(table.n_tokens, table.rt)[0, 1])


def test_regression_first_story_tiny_connectome_gpt_with_sliding_window():
    res = evaluate_futrell2018(tiny_connectome_gpt(0), tokenizer(), limit=1, progress=False)  # 1,000+ tokens > 256
    assert round(res.value("r"), 4) == 0.2381
    assert round(res.value("r_brainscore"), 4) == 0.2473
    assert round(res.value("r_n_tokens"), 4) == 0.242
    assert round(res.value("r_partial_length"), 4) == -0.1003
    assert round(res.value("r_official"), 4) == 0.2387
    assert res.metadata["n_words_official"] == 1073 - 1 and {m.metric: m.n for m in res.metrics}["r_official"] == 1072
    assert list(res.table.columns) == ["item", "zone", "word", "surprisal_bits", "surprisal_official", "n_tokens",
                                       "n_chars", "rt", "sentence_initial"]


def test_missing_file(tmp_path):
    with pytest.raises(DataMissingError, match="all_stories.tok"):
        load_natural_stories(data_dir=tmp_path)
