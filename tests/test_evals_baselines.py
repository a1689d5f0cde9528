"""Baselines: untrained twin model, word length/frequency, sentence length."""

from collections import Counter

import numpy as np
import pytest
import torch
from evals_helpers import tiny_connectome_gpt, tiny_gpt2, tokenizer

from connectome_lib.evals.baselines import (
    brain_length_baselines,
    count_words,
    log_frequency,
    reading_time_baselines,
    untrained_like,
)


def test_untrained_like_is_a_seeded_fresh_model_of_the_same_config():
    model = tiny_connectome_gpt(3)
    a, b = untrained_like(model, seed=0), untrained_like(model, seed=0)
    assert type(a) is type(model) and a.config.to_dict() == model.config.to_dict()
    for pa, pb, pm in zip(a.parameters(), b.parameters(), model.parameters()):
        assert torch.equal(pa, pb) and not torch.equal(pa, pm)
    assert not a.training
    assert type(untrained_like(tiny_gpt2())).__name__ == "GPT2LMHeadModel"


def test_log_frequency_add_one():
    counts = count_words(["The cat, the dog. THE end's"])
    assert counts == Counter({"the": 3, "cat": 1, "dog": 1, "end's": 1})
    total, vocab = 6, 5
    lf = log_frequency(["The,", "unseen", "cat-dog"], counts)
    np.testing.assert_allclose(lf, [np.log(4 / (total + vocab)), np.log(1 / (total + vocab)),
                                    2 * np.log(2 / (total + vocab))])


def test_reading_time_and_brain_length_baselines():
    tok = tokenizer()
    rt = reading_time_baselines(tok, limit=1, counts=Counter({"the": 100, "a": 50}))
    assert set(rt) == {"rt/r_n_chars", "rt/r_n_tokens", "rt/r_logfreq"}
    assert rt["rt/r_n_tokens"] == pytest.approx(0.242, abs=1e-3)  # same as futrell2018's r_n_tokens
    brain = brain_length_baselines(tok, limit=100)
    assert set(brain) == {"brain/r_n_words", "brain/r_n_tokens", "brain/r_length"}
    assert all(-1 <= v <= 1 for v in brain.values())
