"""HellaSwag (Zellers et al. 2019), validation split, zero-shot.

Each item's ``query`` (``activity_label + ": " + ctx``, pre-processed the lm-evaluation-harness
way) is the context; each of the four endings, preceded by a space, is a continuation. Metrics:

* ``acc`` -- highest summed log-likelihood;
* ``acc_norm_chars`` -- lm-evaluation-harness ``acc_norm``: log-likelihood / characters of the
  ending;
* ``acc_norm_tokens`` -- the official script's ``acc_norm``: mean log-likelihood per token;
* ``acc_norm`` -- whichever of the two ``hellaswag_norm`` names (``"chars"`` by default).

Besides, the answer distribution and the ``degenerate`` flag (headline rule: ``acc_norm``) and
the per-item table of :mod:`~connectome_lib.evals.multiple_choice` (``item`` = the data set's
``ind``).

``limit`` scores a seeded simple random sample of N items (``seed``; the file starts with long
runs of items from the same activity, so the first N are not representative); the metadata
records the seed and a hash of the sampled indices.
"""

from __future__ import annotations

from ..jsonl import read_jsonl
from ..paths import data_path
from .multiple_choice import ChoiceItem, add_choice_metrics, indices_hash, item_table, score_choice_items, seeded_sample
from .results import TaskResult


def load_hellaswag(data_dir=None, limit: int | None = None, seed: int = 0) -> list[ChoiceItem]:
    """HellaSwag validation items as :class:`ChoiceItem` (choices with their leading space);
    with ``limit``, a seeded random sample of that many, in file order."""
    recs = read_jsonl(data_path("hellaswag", data_dir), require=("query", "choices", "gold"))
    return [
        ChoiceItem(
            context=r["query"],
            choices=[" " + c for c in r["choices"]],
            gold=int(r["gold"]),
            n_chars=[len(c) for c in r["choices"]],
            item_id=str(r.get("ind", i)),
        )
        for i, r in ((i, recs[i]) for i in seeded_sample(len(recs), limit, seed))
    ]


def evaluate_hellaswag(
    model,
    tokenizer,
    data_dir=None,
    limit: int | None = None,
    norm: str = "chars",
    batch_size: int = 16,
    dtype: str = "float32",
    progress: bool = True,
    seed: int = 0,
) -> TaskResult:
    """Zero-shot HellaSwag accuracy; see the module docstring for the metrics."""
    if norm not in ("chars", "tokens"):
        raise ValueError(f"hellaswag norm must be 'chars' or 'tokens', got {norm!r}")
    items = load_hellaswag(data_dir, limit, seed)
    preds = score_choice_items(model, tokenizer, items, batch_size, dtype, progress, desc="hellaswag")
    res = TaskResult("hellaswag", metadata={
        "norm": norm, "n_items": len(items), "limit": limit,
        "sample": "all items" if limit is None else "seeded simple random sample (all items if limit >= 10042)",
        "seed": seed, "items_hash": indices_hash([int(it.item_id) for it in items]),
    })
    n = len(items)
    res.add("acc", preds.correct("acc").mean(), n)
    res.add("acc_norm_chars", preds.correct("acc_norm_chars").mean(), n)
    res.add("acc_norm_tokens", preds.correct("acc_norm_tokens").mean(), n)
    res.add("acc_norm", preds.correct(f"acc_norm_{norm}").mean(), n)
    add_choice_metrics(res, preds, headline=f"acc_norm_{norm}")
    res.table = item_table(items, preds)
    return res
