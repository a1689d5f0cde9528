"""HellaSwag: metric definitions by hand, the seeded subset, answer distribution and degeneracy,
per-item table, equality with a direct loss computation, regression."""

import numpy as np
import pytest
from evals_helpers import direct_loglik, tiny_connectome_gpt, tiny_gpt2, tokenizer

from connectome_lib.evals.hellaswag import evaluate_hellaswag, load_hellaswag
from connectome_lib.evals.multiple_choice import ChoicePredictions, add_choice_metrics, indices_hash, seeded_sample
from connectome_lib.evals.results import TaskResult
from connectome_lib.paths import DataMissingError


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


def test_load_is_a_seeded_sample_with_a_leading_space():
    everything = load_hellaswag()
    assert len(everything) == 10042 and everything[0].context.startswith("Roof shingle removal:")
    assert all(c.startswith(" ") for c in everything[0].choices) and everything[0].gold == 3
    assert everything[0].n_chars == [len(c) - 1 for c in everything[0].choices]
    a, b, c = load_hellaswag(limit=50, seed=0), load_hellaswag(limit=50, seed=0), load_hellaswag(limit=50, seed=1)
    ids = [int(it.item_id) for it in a]
    assert ids == [int(it.item_id) for it in b] and ids == sorted(ids) and len(set(ids)) == 50
    assert ids != [int(it.item_id) for it in c]
    assert ids != list(range(50)) and max(ids) > 5000  # spread over the file, not its first items
    assert all(everything[i].context == it.context for i, it in zip(ids, a))
    assert seeded_sample(10, None, 0).tolist() == list(range(10)) == seeded_sample(10, 99, 0).tolist()


def test_choice_distribution_and_degenerate_flag_by_hand():
    loglik = np.array([[0.0, -1, -1, -1]] * 19 + [[-1, 0.0, -1, -1]])  # 95 % position 0
    p = ChoicePredictions(loglik=loglik, n_tokens=np.ones_like(loglik), n_chars=np.ones_like(loglik),
                          gold=np.array([0, 1, 2, 3] * 5))
    res = TaskResult("x")
    add_choice_metrics(res, p, headline="acc")
    assert [res.value(f"chosen_frac/{k}") for k in range(4)] == pytest.approx([0.95, 0.05, 0, 0])
    assert res.value("degenerate") == 1.0 and res.value("degenerate/acc_norm_chars") == 1.0
    assert res.metadata["gold_frac"] == [0.25] * 4
    p.loglik = np.array([[0.0, -1, -1, -1]] * 18 + [[-1, 0.0, -1, -1]] * 2)  # exactly 90 %: not degenerate
    res = TaskResult("x")
    add_choice_metrics(res, p, headline="acc")
    assert res.value("degenerate") == 0.0 and res.value("chosen_frac/acc/0") == pytest.approx(0.9)


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
    t = res.table
    assert t["item"].tolist() == [it.item_id for it in items] and t["gold"].tolist() == [it.gold for it in items]
    assert t["correct_acc"].tolist() == [float(c) for c in correct]
    assert t["correct_acc_norm_chars"].tolist() == [float(c) for c in correct_norm]
    md = res.metadata
    assert md["seed"] == 0 and md["items_hash"] == indices_hash([int(it.item_id) for it in items])
    assert md["headline_rule"] == "acc_norm_chars"


def test_regression_20_sampled_items_tiny_connectome_gpt():
    res = evaluate_hellaswag(tiny_connectome_gpt(0), tokenizer(), limit=20, norm="tokens", progress=False)
    assert round(res.value("acc"), 4) == 0.25
    assert round(res.value("acc_norm_chars"), 4) == 0.3
    assert round(res.value("acc_norm_tokens"), 4) == 0.15
    # headline: tokens
    assert [res.value(f"chosen_frac/{k}") for k in range(4)] == pytest.approx([0.3, 0.2, 0.35, 0.15])
    assert res.value("acc_norm") == res.value("acc_norm_tokens")
    assert res.value("degenerate") == 0.0


def test_bad_inputs(tmp_path):
    with pytest.raises(DataMissingError, match="hellaswag_val.jsonl"):
        load_hellaswag(data_dir=tmp_path)
    with pytest.raises(ValueError, match="norm"):
        evaluate_hellaswag(tiny_gpt2(), tokenizer(), limit=1, norm="words", progress=False)
