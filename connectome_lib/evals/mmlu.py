"""MMLU (Hendrycks et al. 2021), test split, zero-shot.

Two prompts (``prompt=``):

* ``"harness"`` (default) -- the lm-evaluation-harness ``mmlu`` default task: the context is
  ``"The following are multiple choice questions (with answers) about {subject}.\\n\\n"`` (subject
  with ``_`` replaced by a space; the task's ``description``) followed by
  ``"{question.strip()}\\nA. {c0}\\nB. {c1}\\nC. {c2}\\nD. {c3}\\nAnswer:"``; the continuations are
  ``" A"`` .. ``" D"``. The four answers are one token each and share one forward pass.
* ``"paper"`` -- the official script's ``"Question: {question}\\n\\nAnswer:"`` followed by
  ``" {choice text}"``.

Metrics: ``acc`` (micro-average over all questions, i.e. subjects weighted by size, as the
harness's ``mmlu`` group), ``acc_macro`` (mean over subjects), ``acc_norm_tokens`` and
``acc_norm_chars`` (meaningful for the ``paper`` prompt only; identical to ``acc`` for one-letter
answers), and ``acc/<subject>`` for each of the 57 subjects. ``limit`` keeps the first N
questions of the file (which is sorted by subject, so a small limit covers few subjects).
"""

from __future__ import annotations

import numpy as np

from .multiple_choice import ChoiceItem, score_choice_items
from .io import read_jsonl
from .results import TaskResult
from ..paths import data_path

LETTERS = ("A", "B", "C", "D")


def harness_prompt(rec: dict) -> ChoiceItem:
    subject = rec["subject"].replace("_", " ")
    desc = f"The following are multiple choice questions (with answers) about {subject}.\n\n"
    body = rec["question"].strip() + "\n"
    body += "".join(f"{L}. {c}\n" for L, c in zip(LETTERS, rec["choices"]))
    return ChoiceItem(desc + body + "Answer:", [" " + L for L in LETTERS], int(rec["answer"]), n_chars=[1] * 4)


def paper_prompt(rec: dict) -> ChoiceItem:
    return ChoiceItem(
        f"Question: {rec['question']}\n\nAnswer:",
        [" " + str(c) for c in rec["choices"]],
        int(rec["answer"]),
        n_chars=[len(str(c)) for c in rec["choices"]],
    )


PROMPTS = {"harness": harness_prompt, "paper": paper_prompt}


def load_mmlu(data_dir=None, limit: int | None = None, split: str = "test") -> list[dict]:
    key = {"test": "mmlu_test", "dev": "mmlu_dev"}[split]
    return read_jsonl(data_path(key, data_dir), limit)


def evaluate_mmlu(
    model,
    tokenizer,
    data_dir=None,
    limit: int | None = None,
    prompt: str = "harness",
    batch_size: int = 16,
    dtype: str = "float32",
    progress: bool = True,
) -> TaskResult:
    """Zero-shot MMLU accuracy, overall and per subject; see the module docstring."""
    if prompt not in PROMPTS:
        raise ValueError(f"mmlu prompt must be one of {sorted(PROMPTS)}, got {prompt!r}")
    recs = load_mmlu(data_dir, limit)
    items = [PROMPTS[prompt](r) for r in recs]
    preds = score_choice_items(model, tokenizer, items, batch_size, dtype, progress, desc="mmlu")
    subjects = np.array([r["subject"] for r in recs])
    correct = preds.correct("acc")
    res = TaskResult("mmlu", metadata={"prompt": prompt, "n_items": len(items), "limit": limit})
    res.add("acc", correct.mean(), len(items))
    per_subject = {s: correct[subjects == s] for s in sorted(set(subjects))}
    res.add("acc_macro", np.mean([v.mean() for v in per_subject.values()]), len(per_subject))
    res.add("acc_norm_tokens", preds.correct("acc_norm_tokens").mean(), len(items))
    res.add("acc_norm_chars", preds.correct("acc_norm_chars").mean(), len(items))
    for s, v in per_subject.items():
        res.add(f"acc/{s}", v.mean(), len(v))
    return res
