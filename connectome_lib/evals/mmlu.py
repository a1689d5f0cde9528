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
answers), ``acc/<subject>`` for each subject scored, the answer distribution and the
``degenerate`` flag (headline rule ``acc``), and the per-item table of
:mod:`~connectome_lib.evals.multiple_choice` (``item`` = ``subject/index within the subject``).

``limit`` scores a seeded sample stratified over the 57 subjects (:func:`stratified_sample`):
the file is sorted by subject, so its first 1,000 questions cover 8 subjects only, and 22 % of
them have answer "A" -- a model that always answers "A" then scores exactly 0.22. Each subject
gets ``limit`` x its share of the questions, rounded by largest remainders (ties broken by the
seed), and at least one question when ``limit >= 57``; its questions are drawn at random with
the seed. The metadata records the seed, the per-subject counts and a hash of the indices.
"""

from __future__ import annotations

import numpy as np

from ..jsonl import read_jsonl
from ..paths import data_path
from .multiple_choice import ChoiceItem, add_choice_metrics, indices_hash, item_table, score_choice_items
from .results import TaskResult

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


#: the fields every MMLU record must hold
MMLU_FIELDS = ("subject", "question", "choices", "answer")


def load_mmlu(data_dir=None, limit: int | None = None, split: str = "test") -> list[dict]:
    """The first ``limit`` questions of a split, in file order (for a representative subset use
    :func:`stratified_sample`)."""
    key = {"test": "mmlu_test", "dev": "mmlu_dev"}[split]
    return read_jsonl(data_path(key, data_dir), limit, require=MMLU_FIELDS)


def stratified_allocation(sizes: dict[str, int], limit: int, seed: int = 0) -> dict[str, int]:
    """Questions per subject for a sample of ``limit``: proportional to ``sizes``, rounded by
    largest remainders (ties in remainder broken by a seeded permutation), at least one per
    subject when ``limit >= len(sizes)``, never more than a subject has."""
    names = sorted(sizes)
    n = np.array([sizes[s] for s in names], dtype=float)
    if limit >= n.sum():
        return {s: sizes[s] for s in names}
    quota = limit * n / n.sum()
    alloc = np.floor(quota).astype(int)
    floor = 1 if limit >= len(names) else 0
    alloc = np.minimum(np.maximum(alloc, floor), n.astype(int))
    tiebreak = np.random.default_rng(seed).permutation(len(names))
    remainder = quota - np.floor(quota)
    while alloc.sum() < limit:  # give one more to the largest remainders that have room
        room = alloc < n
        order = np.lexsort((tiebreak, -np.where(room, remainder, -np.inf)))
        alloc[order[0]] += 1
        remainder[order[0]] -= 1
    while alloc.sum() > limit:  # (only after the floor of one) take from the most over quota
        over = np.where(alloc > floor, alloc - quota, -np.inf)
        order = np.lexsort((tiebreak, -over))
        alloc[order[0]] -= 1
    return {s: int(a) for s, a in zip(names, alloc)}


def stratified_sample(recs: list[dict], limit: int | None, seed: int = 0) -> tuple[np.ndarray, dict[str, int]]:
    """Indices (ascending, into ``recs``) of a seeded sample stratified by ``subject`` (see
    :func:`stratified_allocation`), and the per-subject counts. ``limit=None``: every index."""
    subjects = np.array([r["subject"] for r in recs])
    names, counts = np.unique(subjects, return_counts=True)
    if limit is None:
        return np.arange(len(recs)), {str(s): int(c) for s, c in zip(names, counts)}
    if limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit}")
    alloc = stratified_allocation({str(s): int(c) for s, c in zip(names, counts)}, limit, seed)
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(subjects == s), size=a, replace=False) for s, a in alloc.items() if a > 0]
    return np.sort(np.concatenate(picked)), {s: a for s, a in alloc.items() if a > 0}


def item_ids(recs: list[dict]) -> list[str]:
    """``subject/k`` for the k-th question (0-based, file order) of each subject."""
    seen: dict[str, int] = {}
    out = []
    for r in recs:
        k = seen.get(r["subject"], 0)
        seen[r["subject"]] = k + 1
        out.append(f"{r['subject']}/{k}")
    return out


def evaluate_mmlu(
    model,
    tokenizer,
    data_dir=None,
    limit: int | None = None,
    prompt: str = "harness",
    batch_size: int = 16,
    dtype: str = "float32",
    progress: bool = True,
    seed: int = 0,
) -> TaskResult:
    """Zero-shot MMLU accuracy, overall and per subject; see the module docstring."""
    if prompt not in PROMPTS:
        raise ValueError(f"mmlu prompt must be one of {sorted(PROMPTS)}, got {prompt!r}")
    all_recs = load_mmlu(data_dir)
    ids = item_ids(all_recs)
    index, per_subject_counts = stratified_sample(all_recs, limit, seed)
    recs = [all_recs[i] for i in index]
    items = [PROMPTS[prompt](r) for r in recs]
    for it, i in zip(items, index):
        it.item_id = ids[i]
    preds = score_choice_items(model, tokenizer, items, batch_size, dtype, progress, desc="mmlu")
    subjects = np.array([r["subject"] for r in recs])
    correct = preds.correct("acc")
    res = TaskResult("mmlu", metadata={
        "prompt": prompt, "n_items": len(items), "limit": limit,
        "sample": "all items" if limit is None else "seeded sample stratified by subject",
        "seed": seed, "n_subjects": len(per_subject_counts), "per_subject_counts": per_subject_counts,
        "items_hash": indices_hash(index),
    })
    res.add("acc", correct.mean(), len(items))
    per_subject = {s: correct[subjects == s] for s in sorted(set(subjects))}
    res.add("acc_macro", np.mean([v.mean() for v in per_subject.values()]), len(per_subject))
    res.add("acc_norm_tokens", preds.correct("acc_norm_tokens").mean(), len(items))
    res.add("acc_norm_chars", preds.correct("acc_norm_chars").mean(), len(items))
    for s, v in per_subject.items():
        res.add(f"acc/{s}", v.mean(), len(v))
    add_choice_metrics(res, preds, headline="acc")
    res.table = item_table(items, preds, subject=subjects, index=index)
    return res
