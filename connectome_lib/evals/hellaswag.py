"""HellaSwag (Zellers et al. 2019), validation split, zero-shot.

Each item's ``query`` (``activity_label + ": " + ctx``, pre-processed the lm-evaluation-harness
way) is the context; each of the four endings, preceded by a space, is a continuation. Metrics:

* ``acc`` -- highest summed log-likelihood;
* ``acc_norm_chars`` -- lm-evaluation-harness ``acc_norm``: log-likelihood / characters of the
  ending;
* ``acc_norm_tokens`` -- the official script's ``acc_norm``: mean log-likelihood per token;
* ``acc_norm`` -- whichever of the two ``hellaswag_norm`` names (``"chars"`` by default).

``limit`` keeps the first N items of the file.
"""

from __future__ import annotations

from .multiple_choice import ChoiceItem, score_choice_items
from .io import read_jsonl
from .results import TaskResult
from ..paths import data_path


def load_hellaswag(data_dir=None, limit: int | None = None) -> list[ChoiceItem]:
    """HellaSwag validation items as :class:`ChoiceItem` (choices with their leading space)."""
    recs = read_jsonl(data_path("hellaswag", data_dir), limit)
    return [
        ChoiceItem(
            context=r["query"],
            choices=[" " + c for c in r["choices"]],
            gold=int(r["gold"]),
            n_chars=[len(c) for c in r["choices"]],
        )
        for r in recs
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
) -> TaskResult:
    """Zero-shot HellaSwag accuracy; see the module docstring for the metrics."""
    if norm not in ("chars", "tokens"):
        raise ValueError(f"hellaswag norm must be 'chars' or 'tokens', got {norm!r}")
    items = load_hellaswag(data_dir, limit)
    preds = score_choice_items(model, tokenizer, items, batch_size, dtype, progress, desc="hellaswag")
    res = TaskResult("hellaswag", metadata={"norm": norm, "n_items": len(items), "limit": limit})
    n = len(items)
    res.add("acc", preds.correct("acc").mean(), n)
    res.add("acc_norm_chars", preds.correct("acc_norm_chars").mean(), n)
    res.add("acc_norm_tokens", preds.correct("acc_norm_tokens").mean(), n)
    res.add("acc_norm", preds.correct(f"acc_norm_{norm}").mean(), n)
    return res
