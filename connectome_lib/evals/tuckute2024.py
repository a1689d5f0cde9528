"""Tuckute2024: predicting the language network's fMRI response to 1,000 sentences.

Per layer ``0 .. L`` (0 = embeddings), each sentence is represented by the hidden state of its
last token (sentences tokenised alone, no prefix; right-padded batches, position
``length - 1``). A ridge regression (:func:`~connectome_lib.evals.ridge.ridge_cv_score`:
standardised features, RidgeCV over a log-spaced alpha grid, 5-fold shuffled KFold with
``random_state`` = seed 0) maps the representation to the target ROI (``lang_LH_netw`` by
default, any ROI column on request). Metrics: ``r_layer{k}`` per layer, ``r_best`` and
``best_layer``. ``limit`` keeps the first N sentences (at least ``2 * folds``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..jsonl import read_csv_file
from ..paths import data_path
from .results import TaskResult
from .ridge import alpha_grid, ridge_cv_score
from .scoring import sentence_features

DEFAULT_ROI = "lang_LH_netw"


def load_tuckute2024(
    data_dir=None, limit: int | None = None, roi: str = DEFAULT_ROI, min_rows: int = 10
) -> pd.DataFrame:
    """The sentences and responses; raises ``ValueError`` naming the ROIs for an unknown one."""
    df = read_csv_file(data_path("tuckute2024", data_dir), ("item_id", "sentence"))
    rois = [c for c in df.columns if c not in ("item_id", "sentence")]
    if roi not in rois:
        raise ValueError(f"unknown ROI {roi!r}; the Tuckute2024 file has: {', '.join(rois)}")
    if limit is not None:
        df = df.iloc[: max(limit, min_rows)]
    return df.reset_index(drop=True)


def layerwise_predictivity(
    layers: list[np.ndarray], y: np.ndarray, folds: int = 5, seed: int = 0, alphas: np.ndarray | None = None,
    progress: bool = True, desc: str = "ridge",
) -> list[float]:
    """Cross-validated ridge r for each layer's features."""
    return [
        ridge_cv_score(X, y, folds, seed, alphas).r
        for X in tqdm(layers, desc=desc, disable=not progress, leave=False)
    ]


def add_layer_metrics(res: TaskResult, rs: list[float], n: int, prefix: str = "") -> None:
    for k, r in enumerate(rs):
        res.add(f"{prefix}r_layer{k}", r, n)
    best = int(np.argmax(rs))
    res.add(f"{prefix}r_best", rs[best], n)
    res.add(f"{prefix}best_layer", best, n)


def evaluate_tuckute2024(
    model,
    tokenizer,
    data_dir=None,
    limit: int | None = None,
    roi: str = DEFAULT_ROI,
    folds: int = 5,
    seed: int = 0,
    alphas: np.ndarray | None = None,
    batch_size: int = 16,
    dtype: str = "float32",
    progress: bool = True,
) -> TaskResult:
    """Layer-wise brain predictivity of last-token hidden states; see the module docstring."""
    df = load_tuckute2024(data_dir, limit, roi, min_rows=2 * folds)
    alphas = alpha_grid() if alphas is None else alphas
    layers = sentence_features(model, tokenizer, df["sentence"].tolist(), "last", batch_size, dtype, progress,
                               "tuckute2024")
    y = df[roi].to_numpy(float)
    rs = layerwise_predictivity(layers, y, folds, seed, alphas, progress)
    res = TaskResult(
        "tuckute2024",
        metadata={"roi": roi, "folds": folds, "seed": seed, "n_sentences": len(df), "limit": limit,
                  "alphas": [float(alphas[0]), float(alphas[-1]), len(alphas)], "features": "last-token hidden state"},
    )
    add_layer_metrics(res, rs, len(df))
    return res
