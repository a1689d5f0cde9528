"""Multiple-choice scoring on top of :func:`~connectome_lib.evals.scoring.score_requests`.

Each item is a context, a list of continuations and the index of the right one. Three rules
pick the model's answer, all from the same log-likelihoods:

* ``acc`` -- the largest summed log-likelihood (lm-evaluation-harness and the official script);
* ``acc_norm_chars`` -- the largest log-likelihood divided by the choice's character length
  (lm-evaluation-harness ``acc_norm``; length of the choice text without its leading space);
* ``acc_norm_tokens`` -- the largest mean log-likelihood per token (the official
  ``hellaswag.py``/build-nanoGPT ``acc_norm``: the lowest average loss).

Ties go to the first choice (``numpy.argmax``), as in the harness.

What every multiple-choice task reports besides accuracy (:func:`add_choice_metrics`):

* ``chosen_frac/<k>`` -- the share of items whose chosen answer is position ``k`` under the
  task's headline rule, and ``chosen_frac/<rule>/<k>`` for every rule;
* ``degenerate`` (headline rule) and ``degenerate/<rule>`` -- 1.0 when one answer position is
  chosen for more than :data:`DEGENERATE_SHARE` (90 %) of the items, else 0.0: such a model
  answers by position, not by content, and its accuracy is just that position's share of gold
  answers (e.g. MMLU's first 1,000 items: 22 % are "A");
* a per-item table (:func:`item_table`, ``TaskResult.table``): ``item`` (a stable id: HellaSwag
  ``ind``, MMLU ``subject/index``), ``gold``, ``chosen_<rule>`` and ``correct_<rule>`` for each
  rule, ``loglik_<k>``, ``n_tokens_<k>``, ``n_chars_<k>``. Item-level statistics (bootstrap
  intervals, paired tests between models) are computed from these tables.

With a ``limit``, tasks score a seeded sample (:func:`seeded_sample`), recorded by its seed and
:func:`indices_hash`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from .results import TaskResult
from .scoring import LoglikRequest, LoglikResult, encode_request, score_requests

#: the three decision rules, in the order they are reported
RULES: tuple[str, ...] = ("acc", "acc_norm_chars", "acc_norm_tokens")

#: an answer position chosen for more than this share of the items makes a model "degenerate"
DEGENERATE_SHARE = 0.9


@dataclass
class ChoiceItem:
    context: str
    choices: list[str]  # continuations exactly as appended to the context (leading space included)
    gold: int
    n_chars: list[int] | None = None  # lengths for acc_norm_chars; default len(choice)
    item_id: str | None = None  # stable id for the per-item table (default: the item's position)


@dataclass
class ChoicePredictions:
    """Per-item log-likelihoods (items x choices) and the three decisions."""

    loglik: np.ndarray
    n_tokens: np.ndarray
    n_chars: np.ndarray
    gold: np.ndarray

    @property
    def pred(self) -> np.ndarray:
        return np.argmax(self.loglik, axis=1)

    @property
    def pred_norm_chars(self) -> np.ndarray:
        return np.argmax(self.loglik / self.n_chars, axis=1)

    @property
    def pred_norm_tokens(self) -> np.ndarray:
        return np.argmax(self.loglik / self.n_tokens, axis=1)

    def chosen(self, rule: str = "acc") -> np.ndarray:
        """The chosen answer position of every item under ``rule`` (one of :data:`RULES`)."""
        if rule not in RULES:
            raise ValueError(f"unknown decision rule {rule!r}; known: {', '.join(RULES)}")
        return {"acc": self.pred, "acc_norm_chars": self.pred_norm_chars,
                "acc_norm_tokens": self.pred_norm_tokens}[rule]

    def correct(self, rule: str = "acc") -> np.ndarray:
        return (self.chosen(rule) == self.gold).astype(float)

    @property
    def n_choices(self) -> int:
        return self.loglik.shape[1]


def score_choice_items(
    model,
    tokenizer,
    items: Sequence[ChoiceItem],
    batch_size: int = 16,
    dtype: str = "float32",
    progress: bool = True,
    desc: str = "choices",
) -> ChoicePredictions:
    """Score every choice of every item; ragged choice counts are not supported."""
    n_choices = {len(it.choices) for it in items}
    if len(n_choices) != 1:
        raise ValueError(f"items have differing numbers of choices: {sorted(n_choices)}")
    k = n_choices.pop()
    reqs: list[LoglikRequest] = []
    for it in items:
        lens = it.n_chars or [len(c) for c in it.choices]
        for c, nc in zip(it.choices, lens):
            reqs.append(encode_request(tokenizer, it.context, c, n_chars=nc))
    res: list[LoglikResult] = score_requests(
        model, reqs, batch_size=batch_size, dtype=dtype, pad_id=tokenizer.pad_token_id or 0, progress=progress,
        desc=desc,
    )
    shape = (len(items), k)
    return ChoicePredictions(
        loglik=np.array([r.loglik for r in res]).reshape(shape),
        n_tokens=np.array([r.n_tokens for r in res], dtype=float).reshape(shape),
        n_chars=np.array([max(r.n_chars, 1) for r in res], dtype=float).reshape(shape),
        gold=np.array([it.gold for it in items]),
    )


def position_shares(positions: np.ndarray, k: int) -> np.ndarray:
    """Share of items at each answer position ``0 .. k-1``."""
    positions = np.asarray(positions, dtype=int)
    if len(positions) == 0:
        return np.full(k, np.nan)
    return np.bincount(positions, minlength=k)[:k] / len(positions)


def is_degenerate(positions: np.ndarray, k: int, share: float = DEGENERATE_SHARE) -> bool:
    """Whether one answer position holds more than ``share`` of the items."""
    return bool(np.nanmax(position_shares(positions, k)) > share)


def add_choice_metrics(
    res: TaskResult, preds: ChoicePredictions, headline: str = "acc", rules: Sequence[str] = RULES
) -> None:
    """Add the answer-distribution metrics of the module docstring to ``res``; record the gold
    distribution and the headline rule in its metadata."""
    k, n = preds.n_choices, len(preds.gold)
    for rule in rules:
        chosen = preds.chosen(rule)
        for pos, frac in enumerate(position_shares(chosen, k)):
            res.add(f"chosen_frac/{rule}/{pos}", frac, n)
        res.add(f"degenerate/{rule}", float(is_degenerate(chosen, k)), n)
    chosen = preds.chosen(headline)
    for pos, frac in enumerate(position_shares(chosen, k)):
        res.add(f"chosen_frac/{pos}", frac, n)
    res.add("degenerate", float(is_degenerate(chosen, k)), n)
    res.metadata["headline_rule"] = headline
    res.metadata["degenerate_share"] = DEGENERATE_SHARE
    res.metadata["gold_frac"] = [float(x) for x in position_shares(preds.gold, k)]


def item_table(
    items: Sequence[ChoiceItem], preds: ChoicePredictions, rules: Sequence[str] = RULES, **columns
) -> pd.DataFrame:
    """The per-item table of the module docstring; ``columns`` adds more (e.g. ``subject=``)."""
    k = preds.n_choices
    data: dict[str, object] = {"item": [it.item_id if it.item_id is not None else str(i) for i, it in enumerate(items)]}
    data.update(columns)
    data["gold"] = preds.gold
    for rule in rules:
        data[f"chosen_{rule}"] = preds.chosen(rule)
        data[f"correct_{rule}"] = preds.correct(rule)
    for j in range(k):
        data[f"loglik_{j}"] = preds.loglik[:, j]
    for j in range(k):
        data[f"n_tokens_{j}"] = preds.n_tokens[:, j].astype(int)
    for j in range(k):
        data[f"n_chars_{j}"] = preds.n_chars[:, j].astype(int)
    return pd.DataFrame(data)


def seeded_sample(n: int, limit: int | None, seed: int) -> np.ndarray:
    """Indices of a seeded simple random sample of ``limit`` of ``n`` items, in ascending order
    (every index when ``limit`` is ``None`` or at least ``n``)."""
    if limit is None or limit >= n:
        return np.arange(n)
    if limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit}")
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def indices_hash(indices: Sequence[int]) -> str:
    """A short SHA-256 of a list of item indices, to record which items a subset held."""
    text = ",".join(str(int(i)) for i in indices)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
