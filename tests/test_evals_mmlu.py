"""MMLU: both prompts, per-subject and micro-averaged accuracy, regression."""

import pytest

from connectome_lib.evals.mmlu import evaluate_mmlu, harness_prompt, load_mmlu, paper_prompt
from connectome_lib.paths import DataMissingError
from evals_helpers import tiny_connectome_gpt, tiny_gpt2, tokenizer

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


def test_overall_is_micro_average_and_subjects_are_reported():
    res = evaluate_mmlu(tiny_gpt2(), tokenizer(), limit=110, progress=False)  # spans two subjects
    per = {m.metric: (m.value, m.n) for m in res.metrics if m.metric.startswith("acc/")}
    assert sum(n for _, n in per.values()) == 110 and len(per) == 2
    micro = sum(v * n for v, n in per.values()) / 110
    assert res.value("acc") == pytest.approx(micro)
    assert res.value("acc_macro") == pytest.approx(sum(v for v, _ in per.values()) / 2)


def test_regression_first_20_questions_tiny_connectome_gpt():
    model, tok = tiny_connectome_gpt(0), tokenizer()
    assert round(evaluate_mmlu(model, tok, limit=20, progress=False).value("acc"), 4) == 0.15
    assert round(evaluate_mmlu(model, tok, limit=20, prompt="paper", progress=False).value("acc"), 4) == 0.15


def test_bad_inputs(tmp_path):
    assert len(load_mmlu()) == 14042 and len(load_mmlu(split="dev")) == 285
    with pytest.raises(DataMissingError, match="test.jsonl"):
        load_mmlu(data_dir=tmp_path)
    with pytest.raises(ValueError, match="prompt"):
        evaluate_mmlu(tiny_gpt2(), tokenizer(), limit=1, prompt="fewshot", progress=False)
