"""Multiple-choice scoring on top of :func:`~connectome_lib.evals.scoring.score_requests`.

Each item is a context, a list of continuations and the index of the right one. Three rules
pick the model's answer, all from the same log-likelihoods:

* ``acc`` -- the largest summed log-likelihood (lm-evaluation-harness and the official script);
* ``acc_norm_chars`` -- the largest log-likelihood divided by the choice's character length
  (lm-evaluation-harness ``acc_norm``; length of the choice text without its leading space);
* ``acc_norm_tokens`` -- the largest mean log-likelihood per token (the official
  ``hellaswag.py``/build-nanoGPT ``acc_norm``: the lowest average loss).

Ties go to the first choice (``numpy.argmax``), as in the harness.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .scoring import LoglikRequest, LoglikResult, encode_request, score_requests


@dataclass
class ChoiceItem:
    context: str
    choices: list[str]  # continuations exactly as appended to the context (leading space included)
    gold: int
    n_chars: list[int] | None = None  # lengths for acc_norm_chars; default len(choice)


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

    def correct(self, rule: str = "acc") -> np.ndarray:
        pred = {"acc": self.pred, "acc_norm_chars": self.pred_norm_chars, "acc_norm_tokens": self.pred_norm_tokens}[rule]
        return (pred == self.gold).astype(float)


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
        model, reqs, batch_size=batch_size, dtype=dtype, pad_id=tokenizer.pad_token_id or 0, progress=progress, desc=desc
    )
    shape = (len(items), k)
    return ChoicePredictions(
        loglik=np.array([r.loglik for r in res]).reshape(shape),
        n_tokens=np.array([r.n_tokens for r in res], dtype=float).reshape(shape),
        n_chars=np.array([max(r.n_chars, 1) for r in res], dtype=float).reshape(shape),
        gold=np.array([it.gold for it in items]),
    )
