"""BLiMP (Warstadt et al. 2020): 67 paradigms of 1,000 minimal pairs, scored as
lm-evaluation-harness 0.4 does.

The harness's BLiMP task (``lm_eval/tasks/blimp/_template_yaml``) is a ``multiple_choice`` task
with an empty context (``doc_to_text: ""``), the choices ``[sentence_good, sentence_bad]`` and
gold 0. Its ``target_delimiter`` is the default ``" "`` (``TaskConfig`` in
``lm_eval/config/task.py``), which ``construct_requests`` puts in front of every choice, and an
empty context becomes the tokenizer's BOS token, else its EOS token (``prefix_token_id``; GPT-2:
``<|endoftext|>``). So each sentence is scored as the continuation ``" " + sentence`` of that
one token, and its first word is predicted too, with GPT-2's space-prefixed token for it.
``leading_space=False`` scores the bare sentence instead (what this module did before; the
first word is then a sentence-initial token without the space, which changes every pair's
log-likelihood).

A pair is right when the grammatical sentence's log-likelihood is at least the other's (the
harness's ``argmax``: ties go to the first choice, the grammatical one). Metrics:

* ``acc`` -- the mean over paradigms (the harness's ``blimp`` group, ``weight_by_size: False``);
  ``acc_pairs`` -- the mean over pairs (equal when every paradigm is complete); ``acc/<UID>``;
* ``prefers_first`` -- the share of pairs where the model prefers the first sentence. In BLiMP
  the first sentence is always the grammatical one, so this equals ``acc_pairs``; it is
  reported under its own name because a model with a position bias would show it here, and
  no ``degenerate`` flag is computed (preferring the first sentence is the right answer).

The per-item table (``TaskResult.table``) has one row per pair: ``item`` (``UID/pair index``),
``uid``, ``pair``, ``gold`` (0), ``chosen_acc``, ``correct_acc`` (the column names of the
multiple-choice tasks' tables; BLiMP has the one rule), ``loglik_0`` (grammatical),
``loglik_1``, ``n_tokens_0``, ``n_tokens_1``.

``limit`` keeps the first N pairs *of each paradigm* (file order): the subset is stratified by
paradigm already, and the pairs of a paradigm are independent draws from its generator (vocabulary
sampled into one template), listed as generated, so no further random sampling is done.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd

from ..jsonl import iter_jsonl, no_records
from ..paths import data_path
from .results import TaskResult
from .scoring import LoglikRequest, encode_request, prefix_token_id, score_requests

#: the fields every BLiMP record must hold
BLIMP_FIELDS = ("UID", "sentence_good", "sentence_bad")


def load_blimp(data_dir=None, limit: int | None = None) -> list[dict]:
    """BLiMP records, at most ``limit`` per paradigm (``UID``), in file order; each gets its
    index within its paradigm as ``pair``."""
    counts: dict[str, int] = defaultdict(int)
    out = []
    for rec in iter_jsonl(data_path("blimp", data_dir), require=BLIMP_FIELDS):
        uid = rec["UID"]
        if limit is not None and counts[uid] >= limit:
            continue
        out.append({**rec, "pair": counts[uid]})
        counts[uid] += 1
    if not out:
        raise no_records(data_path("blimp", data_dir))
    return out


def sentence_request(tokenizer, sentence: str, leading_space: bool = True) -> LoglikRequest:
    """The harness's request for one sentence: ``" " + sentence`` (or the bare sentence) after
    the prefix token (see the module docstring)."""
    continuation = (" " if leading_space else "") + sentence
    return encode_request(tokenizer, "", continuation, n_chars=len(sentence))


def evaluate_blimp(
    model,
    tokenizer,
    data_dir=None,
    limit: int | None = None,
    batch_size: int = 16,
    dtype: str = "float32",
    progress: bool = True,
    leading_space: bool = True,
) -> TaskResult:
    """Per-paradigm and overall BLiMP accuracy; see the module docstring."""
    recs = load_blimp(data_dir, limit)
    reqs = []
    for r in recs:
        reqs += [sentence_request(tokenizer, r["sentence_good"], leading_space),
                 sentence_request(tokenizer, r["sentence_bad"], leading_space)]
    scored = score_requests(
        model, reqs, batch_size=batch_size, dtype=dtype, pad_id=tokenizer.pad_token_id or 0, progress=progress,
        desc="blimp",
    )
    ll = np.array([x.loglik for x in scored]).reshape(-1, 2)
    n_tok = np.array([x.n_tokens for x in scored]).reshape(-1, 2)
    chosen = np.argmax(ll, axis=1)  # ties -> 0, the grammatical sentence, as in the harness
    correct = (chosen == 0).astype(float)
    uids = np.array([r["UID"] for r in recs])
    per = {u: correct[uids == u] for u in sorted(set(uids))}
    res = TaskResult("blimp", metadata={
        "n_pairs": len(recs), "n_paradigms": len(per), "limit_per_paradigm": limit,
        "subset": "first N pairs of each paradigm (file order)", "leading_space": leading_space,
        "prefix_token_id": prefix_token_id(tokenizer),
    })
    res.add("acc", np.mean([v.mean() for v in per.values()]), len(per))
    res.add("acc_pairs", correct.mean(), len(recs))
    res.add("prefers_first", (chosen == 0).mean(), len(recs))
    for u, v in per.items():
        res.add(f"acc/{u}", v.mean(), len(v))
    res.table = pd.DataFrame({
        "item": [f"{r['UID']}/{r['pair']}" for r in recs], "uid": uids, "pair": [r["pair"] for r in recs],
        "gold": 0, "chosen_acc": chosen, "correct_acc": correct,
        "loglik_0": ll[:, 0], "loglik_1": ll[:, 1], "n_tokens_0": n_tok[:, 0], "n_tokens_1": n_tok[:, 1],
    })
    return res
