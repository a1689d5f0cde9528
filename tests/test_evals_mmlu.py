"""MMLU: both prompts, the stratified seeded subset, per-subject and micro-averaged accuracy,
answer distribution, per-item table, regression."""

from collections import Counter

import numpy as np
import pytest
from evals_helpers import tiny_connectome_gpt, tiny_gpt2, tokenizer

from connectome_lib.evals.mmlu import (
    evaluate_mmlu,
    harness_prompt,
    item_ids,
    load_mmlu,
    paper_prompt,
    stratified_allocation,
    stratified_sample,
)
from connectome_lib.paths import DataMissingError

REC = {"subject": "high_school_physics", "question": " What is 2+2? \n", "choices": ["1", "4", "3", "5"], "answer": 1}


def test_harness_prompt_is_the_lm_eval_default_template():
    it = harness_prompt(REC)
    assert it.context == (
        "The following are multiple choice questions (with answers) about high school physics.\n\n"
        "What is 2+2?\nA. 1\nB. 4\nC. 3\nD. 5\nAnswer:"
    )
    assert it.choices == [" A", " B", " C", " D"] and it.gold == 1


def test_paper_prompt():
    it = paper_prompt(REC)
    assert it.context == "Question:  What is 2+2? \n\n\nAnswer:"
    assert it.choices == [" 1", " 4", " 3", " 5"]


def test_limit_1000_is_stratified_over_all_57_subjects():
    recs = load_mmlu()
    sizes = Counter(r["subject"] for r in recs)
    idx, counts = stratified_sample(recs, 1000, seed=0)
    assert len(idx) == 1000 and len(set(idx.tolist())) == 1000 and sum(counts.values()) == 1000
    picked = Counter(recs[i]["subject"] for i in idx)
    assert len(picked) == 57 and picked == Counter(counts)
    for s, n in sizes.items():  # proportional allocation, within one question of the quota
        assert abs(picked[s] - 1000 * n / len(recs)) <= 1
    gold = np.bincount([recs[i]["answer"] for i in idx], minlength=4) / 1000
    assert gold.max() < 0.35 and gold.min() > 0.15  # every letter 15-35 % (the first 1,000: 8 subjects)
    assert len({r["subject"] for r in recs[:1000]}) == 8


def test_same_seed_same_items_other_seed_other_items():
    recs = load_mmlu()
    a, ca = stratified_sample(recs, 300, seed=0)
    b, cb = stratified_sample(recs, 300, seed=0)
    c, _ = stratified_sample(recs, 300, seed=1)
    assert a.tolist() == b.tolist() and ca == cb
    assert a.tolist() != c.tolist() and len(set(a.tolist()) & set(c.tolist())) < 100


def test_allocation_floor_and_small_limits():
    sizes = {"a": 1000, "b": 10, "c": 5}
    assert stratified_allocation(sizes, 3) == {"a": 1, "b": 1, "c": 1}  # at least one each
    assert stratified_allocation(sizes, 101) == {"a": 99, "b": 1, "c": 1}
    assert sum(stratified_allocation(sizes, 2).values()) == 2
    assert stratified_allocation(sizes, 5000) == sizes
    recs = load_mmlu()
    for limit in (1, 20, 56, 57, 58, 14041):
        idx, counts = stratified_sample(recs, limit)
        assert len(idx) == limit and sum(counts.values()) == limit
        assert (len(counts) == 57) == (limit >= 57)


def test_overall_is_micro_average_and_subjects_are_reported():
    res = evaluate_mmlu(tiny_gpt2(), tokenizer(), limit=110, progress=False)
    per = {m.metric: (m.value, m.n) for m in res.metrics if m.metric.startswith("acc/")}
    assert sum(n for _, n in per.values()) == 110 and len(per) == 57
    micro = sum(v * n for v, n in per.values()) / 110
    assert res.value("acc") == pytest.approx(micro)
    assert res.value("acc_macro") == pytest.approx(sum(v for v, _ in per.values()) / 57)
    md = res.metadata
    assert md["seed"] == 0 and md["n_subjects"] == 57 and sum(md["per_subject_counts"].values()) == 110


def test_answer_distribution_and_item_table():
    res = evaluate_mmlu(tiny_gpt2(), tokenizer(), limit=60, progress=False, seed=3)
    t = res.table
    assert len(t) == 60 and t["item"].is_unique
    recs = load_mmlu()
    ids = item_ids(recs)
    assert t["item"].tolist() == [ids[i] for i in t["index"]]
    assert all(recs[i]["answer"] == g for i, g in zip(t["index"], t["gold"]))
    assert t["correct_acc"].mean() == pytest.approx(res.value("acc"))
    shares = [res.value(f"chosen_frac/{k}") for k in range(4)]
    assert shares == pytest.approx((np.bincount(t["chosen_acc"], minlength=4) / 60).tolist())
    assert res.value("degenerate") == float(max(shares) > 0.9)
    assert res.metadata["headline_rule"] == "acc" and res.metadata["seed"] == 3
    np.testing.assert_array_equal(t["chosen_acc"], t[[f"loglik_{k}" for k in range(4)]].to_numpy().argmax(1))


def test_regression_tiny_connectome_gpt():
    model, tok = tiny_connectome_gpt(0), tokenizer()
    res = evaluate_mmlu(model, tok, limit=60, progress=False)
    # the untrained model answers " D" every time: flagged, and its accuracy is D's gold share
    assert res.value("chosen_frac/3") == 1.0 and res.value("degenerate") == 1.0
    assert round(res.value("acc"), 4) == 0.2 == round(res.metadata["gold_frac"][3], 4)
    paper = evaluate_mmlu(model, tok, limit=60, prompt="paper", progress=False)
    assert round(paper.value("acc"), 4) == 0.1667 and paper.value("degenerate") == 0.0  # answers by content


def test_bad_inputs(tmp_path):
    assert len(load_mmlu()) == 14042 and len(load_mmlu(split="dev")) == 285
    with pytest.raises(DataMissingError, match="test.jsonl"):
        load_mmlu(data_dir=tmp_path)
    with pytest.raises(ValueError, match="prompt"):
        evaluate_mmlu(tiny_gpt2(), tokenizer(), limit=1, prompt="fewshot", progress=False)
