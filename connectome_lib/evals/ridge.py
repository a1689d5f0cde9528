"""Cross-validated ridge regression from features to a brain (or any) target.

The paper's mapping (official code; Brain-Score style): for each of ``n_folds`` shuffled KFold
splits (``random_state`` = seed, 0 by default), standardise the features on the training fold,
fit :class:`sklearn.linear_model.RidgeCV` (penalty chosen among a log-spaced grid by efficient
leave-one-out cross-validation *inside* the training fold), predict the held-out fold and take
Pearson's r there; the score is the mean r over folds. Everything is deterministic.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import pearsonr
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def alpha_grid(min_exp: int = -30, max_exp: int = 29, n: int = 60) -> np.ndarray:
    """Log-spaced ridge penalties ``10**min_exp .. 10**max_exp`` (the official 1e-30..1e29)."""
    return np.logspace(min_exp, max_exp, n)


@dataclass
class RidgeScore:
    """Mean held-out Pearson r over folds, the per-fold r and the penalty chosen in each fold."""

    r: float
    fold_r: list[float] = field(default_factory=list)
    fold_alpha: list[float] = field(default_factory=list)


def safe_pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r, 0.0 when either side is constant (e.g. identical embedding features)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if np.ptp(x) <= 1e-12 * max(1.0, np.abs(x).max()) or np.ptp(y) == 0:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nearly-constant input
        return float(pearsonr(x, y)[0])


def ridge_cv_score(
    X: np.ndarray,
    y: np.ndarray,
    n_folds: int = 5,
    seed: int = 0,
    alphas: np.ndarray | None = None,
) -> RidgeScore:
    """Cross-validated ridge predictivity of ``y`` (n,) from ``X`` (n, d); see the module doc."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]}")
    if X.shape[0] < 2 * n_folds:
        raise ValueError(f"{X.shape[0]} samples are too few for {n_folds}-fold cross-validation")
    alphas = alpha_grid() if alphas is None else np.asarray(alphas)
    rs, chosen = [], []
    for train, test in KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(X):
        model = make_pipeline(StandardScaler(), RidgeCV(alphas=alphas))
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            # the tiniest penalties of the official grid make the leave-one-out formula divide
            # by ~0 for some alphas; those alphas score inf/nan and are never chosen
            warnings.simplefilter("ignore", RuntimeWarning)
            model.fit(X[train], y[train])
            rs.append(safe_pearson(model.predict(X[test]), y[test]))
        chosen.append(float(model[-1].alpha_))
    return RidgeScore(float(np.mean(rs)), rs, chosen)
