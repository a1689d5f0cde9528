"""Language-selective units: generated localizer, Welch t ranking, brain predictivity."""

import re

import numpy as np
import pytest
from evals_helpers import tiny_connectome_gpt, tokenizer

from connectome_lib.evals.language_units import (
    build_localizer,
    candidate_sentences,
    evaluate_language_units,
    nonword_string,
    selectivity,
    top_units,
    unit_table,
)

TEXT = ("It was a bright cold day in April, and the clocks were striking thirteen. Short one. "
        "The quick brown fox jumps over the lazy dog near the old mill. 3 numbers are not allowed here at all today.")


def test_candidate_sentences_are_clean_and_8_to_20_words():
    assert candidate_sentences([TEXT]) == [
        "It was a bright cold day in April, and the clocks were striking thirteen.",
        "The quick brown fox jumps over the lazy dog near the old mill.",
    ]


def test_nonwords_match_word_count_and_lengths_and_are_pronounceable():
    rng = np.random.default_rng(0)
    s = "It was a bright cold day in April, and the clocks were striking thirteen."
    nw = nonword_string(s, rng)
    assert [len(w) for w in nw.split()] == [len(w) for w in s.split()]
    for w in nw.split():
        cv = "".join("v" if c in "aeiou" else "c" for c in w)
        assert not re.search("cc|vv", cv)


def test_localizer_is_deterministic_and_says_it_is_generated():
    a = build_localizer(n_sentences=20, seed=0)
    b = build_localizer(n_sentences=20, seed=0)
    assert a == b and len(a.nonwords) == 20 and "generated" in a.source
    assert build_localizer(n_sentences=20, seed=1).sentences != a.sentences
    with pytest.raises(ValueError, match="usable sentences"):
        build_localizer(n_sentences=5, texts=[TEXT])


def test_welch_t_ranks_the_selective_units_first():
    rng = np.random.default_rng(0)
    sent = [rng.normal(size=(30, 4)), rng.normal(size=(30, 4))]
    nonw = [rng.normal(size=(30, 4)), rng.normal(size=(30, 4))]
    sent[1][:, 2] += 5  # unit 6 (layer 2, dim 2) is language-selective
    sent[0][:, 1] -= 5  # unit 1 prefers non-words
    t = selectivity(sent, nonw)
    assert t.argmax() == 6 and t.argmin() == 1
    assert top_units(t, 0.01).tolist() == [6] and len(top_units(t, 0.5)) == 4


def test_regression_tiny_connectome_gpt():
    res = evaluate_language_units(tiny_connectome_gpt(0), tokenizer(), limit=100, n_sentences=40, progress=False)
    assert res.value("n_units_top1pct") == 2 and res.value("n_units_top10pct") == 13
    assert round(res.value("r_top1pct"), 4) == -0.0268
    assert "generated" in res.metadata["localizer"]
    # the per-unit table: every unit once, layers 1..L, and its top units are the ones counted
    t = res.table
    n_layer, width = tiny_connectome_gpt(0).config.n_layer, tiny_connectome_gpt(0).config.n_embd
    assert list(t.columns) == ["layer", "unit", "t"] and len(t) == n_layer * width
    assert sorted(t["layer"].unique()) == list(range(1, n_layer + 1)) and t["unit"].max() == width - 1
    top = t.sort_values(["t", "layer", "unit"], ascending=[False, True, True], kind="stable").head(13)
    assert top.groupby("layer").size().reindex(range(1, n_layer + 1), fill_value=0).tolist() == \
        res.metadata["units_per_layer_top10pct"]


def test_unit_table_marks_undefined_t_as_missing():
    t = unit_table(np.array([1.0, -np.inf, 2.0, 0.5]), width=2)
    assert t["layer"].tolist() == [1, 1, 2, 2] and t["unit"].tolist() == [0, 1, 0, 1]
    assert np.isnan(t["t"][1]) and t["t"][2] == 2.0
