"""HellaSwag: metric definitions by hand, equality with a direct loss computation, regression."""

import numpy as np
import pytest

from connectome_lib.evals.hellaswag import evaluate_hellaswag, load_hellaswag
from connectome_lib.evals.multiple_choice import ChoicePredictions
from connectome_lib.paths import DataMissingError
from evals_helpers import direct_loglik, tiny_connectome_gpt, tiny_gpt2, tokenizer


def test_acc_and_both_normalisations_by_hand():
    p = ChoicePredictions(
        loglik=np.array([[-10.0, -12.0], [-10.0, -12.0]]),
        n_tokens=np.array([[2.0, 4.0], [5.0, 4.0]]),
        n_chars=np.array([[5.0, 12.0], [20.0, 4.0]]),
        gold=np.array([1, 1]),
    )
    assert p.correct("acc").tolist() == [0, 0]  # -10 > -12
    assert p.correct("acc_norm_chars").tolist() == [1, 0]  # -2 vs -1 ; -0.5 vs -3
    assert p.correct("acc_norm_tokens").tolist() == [1, 0]  # -5 vs -3 ; -2 vs -3


def test_load_keeps_the_first_items_with_a_leading_space():
    items = load_hellaswag(limit=3)
    assert len(items) == 3 and items[0].context.startswith("Roof shingle removal:")
    assert all(c.startswith(" ") for c in items[0].choices) and items[0].gold == 3
    assert items[0].n_chars == [len(c) - 1 for c in items[0].choices]
    assert len(load_hellaswag()) == 10042


def test_scores_equal_a_direct_per_example_loss():
    model, tok = tiny_gpt2(), tokenizer()
    items = load_hellaswag(limit=4)
    res = evaluate_hellaswag(model, tok, limit=4, batch_size=3, progress=False)
    correct, correct_norm = [], []
    for it in items:
        ctx = tok(it.context)["input_ids"]
        lls, lens = [], []
        for c in it.choices:
            cont = tok(it.context + c)["input_ids"][len(ctx):]
            lls.append(direct_loglik(model, ctx, cont))
            lens.append(len(c) - 1)
        correct.append(np.argmax(lls) == it.gold)
        correct_norm.append(np.argmax(np.array(lls) / lens) == it.gold)
    assert res.value("acc") == pytest.approx(np.mean(correct))
    assert res.value("acc_norm_chars") == pytest.approx(np.mean(correct_norm))
    assert res.value("acc_norm") == res.value("acc_norm_chars")


def test_regression_first_20_items_tiny_connectome_gpt():
    res = evaluate_hellaswag(tiny_connectome_gpt(0), tokenizer(), limit=20, norm="tokens", progress=False)
    assert round(res.value("acc"), 4) == 0.25
    assert round(res.value("acc_norm_chars"), 4) == 0.4
    assert round(res.value("acc_norm_tokens"), 4) == 0.45
    assert res.value("acc_norm") == res.value("acc_norm_tokens")


def test_bad_inputs(tmp_path):
    with pytest.raises(DataMissingError, match="hellaswag_val.jsonl"):
        load_hellaswag(data_dir=tmp_path)
    with pytest.raises(ValueError, match="norm"):
        evaluate_hellaswag(tiny_gpt2(), tokenizer(), limit=1, norm="words", progress=False)
