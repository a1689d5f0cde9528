"""BLiMP (Warstadt et al. 2020): 67 paradigms of 1,000 minimal pairs.

A pair is right when the grammatical sentence has the higher log-likelihood. Each sentence is
scored as a continuation of the ``<|endoftext|>`` token (the lm-evaluation-harness convention for
an empty context), so its first word is predicted too. Metrics: ``acc/<UID>`` per paradigm and
``acc`` = the mean over paradigms (equal to the mean over pairs when every paradigm is
complete). ``limit`` keeps the first N pairs *of each paradigm* (file order).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from .io import iter_jsonl
from .results import TaskResult
from .scoring import LoglikRequest, score_requests
from ..paths import data_path


def load_blimp(data_dir=None, limit: int | None = None) -> list[dict]:
    """BLiMP records, at most ``limit`` per paradigm (``UID``), in file order."""
    counts: dict[str, int] = defaultdict(int)
    out = []
    for rec in iter_jsonl(data_path("blimp", data_dir)):
        uid = rec["UID"]
        if limit is not None and counts[uid] >= limit:
            continue
        counts[uid] += 1
        out.append(rec)
    return out


def sentence_request(tokenizer, sentence: str) -> LoglikRequest:
    ids = tokenizer(sentence, add_special_tokens=False)["input_ids"]
    return LoglikRequest((tokenizer.eos_token_id,), tuple(ids), len(sentence))


def evaluate_blimp(
    model,
    tokenizer,
    data_dir=None,
    limit: int | None = None,
    batch_size: int = 16,
    dtype: str = "float32",
    progress: bool = True,
) -> TaskResult:
    """Per-paradigm and overall BLiMP accuracy; see the module docstring."""
    recs = load_blimp(data_dir, limit)
    reqs = []
    for r in recs:
        reqs += [sentence_request(tokenizer, r["sentence_good"]), sentence_request(tokenizer, r["sentence_bad"])]
    ll = np.array([x.loglik for x in score_requests(
        model, reqs, batch_size=batch_size, dtype=dtype, pad_id=tokenizer.pad_token_id or 0, progress=progress, desc="blimp"
    )]).reshape(-1, 2)
    correct = (ll[:, 0] > ll[:, 1]).astype(float)
    uids = np.array([r["UID"] for r in recs])
    per = {u: correct[uids == u] for u in sorted(set(uids))}
    res = TaskResult("blimp", metadata={"n_pairs": len(recs), "n_paradigms": len(per), "limit_per_paradigm": limit})
    res.add("acc", np.mean([v.mean() for v in per.values()]), len(per))
    res.add("acc_pairs", correct.mean(), len(recs))
    for u, v in per.items():
        res.add(f"acc/{u}", v.mean(), len(v))
    return res
