"""Futrell2018: data join, word/token alignment, sliding window, metrics, regression."""

import numpy as np
import pandas as pd
import pytest

from connectome_lib.evals.futrell2018 import (
    evaluate_futrell2018,
    load_natural_stories,
    reading_time_metrics,
    sentence_initial,
    story_surprisals,
    word_token_map,
)
from connectome_lib.evals.results import TaskResult
from connectome_lib.evals.scoring import token_surprisals
from connectome_lib.paths import DataMissingError
from evals_helpers import tiny_connectome_gpt, tiny_gpt2, tokenizer


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


def test_metrics_on_a_hand_made_table():
    table = pd.DataFrame({
        "surprisal_bits": [1.0, 2.0, 3.0, 4.0, 6.0], "rt": [300, 320, 330, 360, 400],
        "n_tokens": [1, 1, 2, 2, 3], "n_chars": [2, 3, 5, 6, 9],
        "sentence_initial": [True, False, False, True, False],
    })
    res = TaskResult("futrell2018")
    reading_time_metrics(table, res)
    assert res.value("r") == pytest.approx(np.corrcoef(table.surprisal_bits, table.rt)[0, 1])
    keep = ~table.sentence_initial
    assert res.value("r_brainscore") == pytest.approx(np.corrcoef(table.surprisal_bits[keep], table.rt[keep])[0, 1])
    assert res.value("r_n_tokens") == pytest.approx(np.corrcoef(table.n_tokens, table.rt)[0, 1])


def test_regression_first_story_tiny_connectome_gpt_with_sliding_window():
    res = evaluate_futrell2018(tiny_connectome_gpt(0), tokenizer(), limit=1, progress=False)  # 1,000+ tokens > 256
    assert round(res.value("r"), 4) == 0.2381
    assert round(res.value("r_brainscore"), 4) == 0.2473
    assert round(res.value("r_n_tokens"), 4) == 0.242
    assert round(res.value("r_partial_length"), 4) == -0.1003
    assert list(res.table.columns) == ["item", "zone", "word", "surprisal_bits", "n_tokens", "n_chars", "rt", "sentence_initial"]


def test_missing_file(tmp_path):
    with pytest.raises(DataMissingError, match="all_stories.tok"):
        load_natural_stories(data_dir=tmp_path)
