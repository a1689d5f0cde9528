"""The connectome's effect seen three ways: per validation book, over the inner loop, in tokens.

Each function takes tables the run exports and returns one tidy table, with intervals across
units of replication (lineages for the types that inherit a connectome, seeds for NoConnectome;
:func:`connectome_lib.readers.unit_of`), never across items:

* :func:`window_books` / :func:`book_losses` -- which validation book each window of the
  ``perplexity`` evaluation lies in, and each model's mean loss per book;
* :func:`book_gaps` -- per book, Connectome minus each control, unit means, Welch 95 % interval;
* :func:`gap_over_training` -- the same gap at every evaluated iteration of the inner loop, beside
  the paper's (:mod:`connectome_lib.paper_numbers`);
* :func:`tokens_to_target` -- the tokens a Connectome lineage needs to reach NoConnectome's final
  validation loss, as a fraction of the inner loop's tokens, with an interval over lineages.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from .registry import CONNECTOME, CONTROLS


def welch_interval(xa: np.ndarray, xb: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """``(mean(xa) - mean(xb), low, high)``: the Welch t interval of a difference of means
    (NaN bounds when a group has fewer than two values)."""
    xa, xb = np.asarray(xa, float), np.asarray(xb, float)
    d = float(xa.mean() - xb.mean()) if xa.size and xb.size else math.nan
    if xa.size < 2 or xb.size < 2:
        return d, math.nan, math.nan
    va, vb = xa.var(ddof=1) / xa.size, xb.var(ddof=1) / xb.size
    if va + vb == 0:
        return d, d, d
    df = (va + vb) ** 2 / (va ** 2 / (xa.size - 1) + vb ** 2 / (xb.size - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * math.sqrt(va + vb)
    return d, d - half, d + half


def mean_interval(x: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: the t interval of a mean (NaN bounds for fewer than two values)."""
    x = np.asarray(x, float)
    m = float(x.mean()) if x.size else math.nan
    if x.size < 2:
        return m, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1)) * x.std(ddof=1) / math.sqrt(x.size)
    return m, m - half, m + half


def _gaps(units: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Connectome minus each control of the unit means in ``units`` (columns ``label, unit,
    value`` and ``by``), per group of ``by``."""
    rows = []
    for key, g in units.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        a = g.loc[g["label"] == CONNECTOME, "value"].to_numpy(float)
        for control in CONTROLS:
            b = g.loc[g["label"] == control, "value"].to_numpy(float)
            if a.size and b.size:
                d, lo, hi = welch_interval(a, b)
                rows.append({**dict(zip(by, key)), "control": control, "gap": d, "ci_low": lo, "ci_high": hi,
                             "n_a": a.size, "n_b": b.size})
    return pd.DataFrame(rows, columns=[*by, "control", "gap", "ci_low", "ci_high", "n_a", "n_b"])


def _unit_means(df: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    return df.groupby([*by, "label", "unit"], as_index=False)[value].mean().rename(columns={value: "value"})


# ------------------------------------------------------------------------------ per book
def window_books(n_windows: int, context: int, token_books: np.ndarray) -> np.ndarray:
    """The book of every validation window of the ``perplexity`` task: window ``i`` scores
    tokens ``i * context + 1 .. (i + 1) * context``; its book is that of its first scored token."""
    starts = np.arange(n_windows, dtype=np.int64) * int(context) + 1
    if n_windows and starts[-1] >= len(token_books):
        raise ValueError(f"{n_windows} windows of {context} tokens need more than the {len(token_books)} "
                         "validation tokens given")
    return np.asarray(token_books)[starts]


def profile_window_books(profile, n_windows: int) -> np.ndarray:
    """:func:`window_books` for a profile's validation corpus and ``perplexity`` context: the
    book index of each of the first ``n_windows`` windows (the cluster of a window's loss)."""
    from .data import token_books

    context = profile.evals.perplexity_context or profile.model.block_size
    return window_books(int(n_windows), context, token_books("val", profile.data))


def book_losses(items: pd.DataFrame, units: pd.DataFrame, books: np.ndarray, titles: dict[int, str]) -> pd.DataFrame:
    """Each model's mean validation loss per book: rows ``model, label, unit, book, title,
    windows, loss``. ``items`` holds the ``validation loss`` per-window outcomes
    (:func:`connectome_lib.verdicts.item_outcomes`, ``item`` = window index), ``books`` the
    book of each window (:func:`window_books`)."""
    v = items[items["measure"] == "validation loss"].copy()
    if v.empty:
        return pd.DataFrame(columns=["model", "label", "unit", "book", "title", "windows", "loss"])
    v["book"] = books[v["item"].astype(int).to_numpy()]
    v["unit"] = v["model"].map(dict(zip(units["model"], units["unit"])))
    out = v.groupby(["model", "label", "unit", "book"], as_index=False).agg(windows=("value", "size"),
                                                                              loss=("value", "mean"))
    out.insert(4, "title", out["book"].map(lambda b: titles.get(int(b), str(b))))
    return out


def book_gaps(losses: pd.DataFrame) -> pd.DataFrame:
    """Per validation book, Connectome minus each control in mean loss (negative: the
    Connectome model predicts that book better), over unit means, with a Welch 95 % interval."""
    if losses.empty:
        return pd.DataFrame()
    units = _unit_means(losses, ["book", "title"], "loss")
    windows = losses.groupby("book")["windows"].max()
    out = _gaps(units, ["book", "title"])
    out.insert(2, "windows", out["book"].map(windows))
    return out


# ------------------------------------------------------------------------------ over training
def gap_over_training(curves: pd.DataFrame, paper: pd.DataFrame | None = None) -> pd.DataFrame:
    """Validation loss gap (Connectome minus each control) at every validation point of the
    inner loop's learning curves, over unit means, with a Welch 95 % interval (``curves``:
    :func:`connectome_lib.readers.training_curves`, columns ``label, unit, iteration, val_loss``:
    the fixed validation batches every ``val_every`` iterations, the curve :func:`tokens_to_target`
    reads too), with the paper's gap at its iterations beside it (``source`` = ``ours`` or
    ``paper``; ``paper`` rows have no interval)."""
    v = curves.dropna(subset=["val_loss"]) if len(curves) else curves
    empty = pd.DataFrame(columns=["iteration", "control", "gap", "ci_low", "ci_high", "n_a", "n_b"])
    out = (_gaps(_unit_means(v, ["iteration"], "val_loss"), ["iteration"]) if len(v) else empty).assign(source="ours")
    if paper is not None and len(paper):
        p = paper[(paper["task"] == "perplexity") & (paper["metric"] == "loss")]
        rows = []
        for it, g in p.groupby("iteration"):
            val = dict(zip(g["model"], g["value"]))
            rows += [{"iteration": it, "control": c, "gap": val[CONNECTOME] - val[c], "source": "paper"}
                     for c in CONTROLS if CONNECTOME in val and c in val]
        out = pd.concat([out, pd.DataFrame(rows)], ignore_index=True)
    return out


# ------------------------------------------------------------------------------ in tokens
def tokens_to_target(curves: pd.DataFrame, target_label: str = "NoConnectome", label: str = CONNECTOME) -> pd.DataFrame:
    """The tokens each unit of ``label`` (by default each Connectome lineage) needs to reach
    ``target_label``'s final validation loss.

    ``curves``: the inner-loop learning curves (:func:`connectome_lib.readers.training_curves`,
    columns ``label, unit, iteration, tokens, val_loss``). The target is the mean over
    ``target_label``'s units of their final validation loss; a lineage's curve is the mean of
    its models' curves, and the tokens it needs are where that curve first reaches the target,
    interpolated linearly between evaluations (NaN if it never does). One row per lineage with
    ``tokens``, ``fraction`` (of the inner loop's tokens) and a last row ``unit = "mean"`` with
    the mean fraction and its t interval over lineages (NaN if any lineage misses the target)."""
    c = curves.dropna(subset=["val_loss"])
    if c.empty or target_label not in set(c["label"]) or label not in set(c["label"]):
        return pd.DataFrame(columns=["unit", "tokens", "fraction", "ci_low", "ci_high", "target"])
    last = c.groupby(["label", "unit"])["iteration"].transform("max") == c["iteration"]
    target = float(c[last & (c["label"] == target_label)].groupby("unit")["val_loss"].mean().mean())
    own = c[c["label"] == label].groupby(["unit", "iteration"], as_index=False)[["tokens", "val_loss"]].mean()
    rows = []
    for unit, g in own.groupby("unit"):
        g = g.sort_values("tokens")
        t, loss = g["tokens"].to_numpy(float), g["val_loss"].to_numpy(float)
        hit = np.flatnonzero(loss <= target)
        if not hit.size:
            tokens = math.nan
        elif hit[0] == 0:
            tokens = t[0]
        else:
            i = hit[0]  # linear interpolation between the evaluations before and at the crossing
            tokens = t[i - 1] + (t[i] - t[i - 1]) * (loss[i - 1] - target) / (loss[i - 1] - loss[i])
        rows.append({"unit": unit, "tokens": tokens, "fraction": tokens / t[-1]})
    out = pd.DataFrame(rows)
    m, lo, hi = mean_interval(out["fraction"].to_numpy(float))
    out = pd.concat([out, pd.DataFrame([{"unit": "mean", "tokens": math.nan, "fraction": m, "ci_low": lo,
                                         "ci_high": hi}])], ignore_index=True)
    return out.assign(target=target)


def tokens_to_target_by_type(curves: pd.DataFrame, target_label: str = "NoConnectome") -> pd.DataFrame:
    """:func:`tokens_to_target` for every model type of ``curves`` (``target_label`` included:
    its own units reach their mean final loss only near the end), with a ``label`` column."""
    tables = [tokens_to_target(curves, target_label, label).assign(label=label)
              for label in dict.fromkeys(curves["label"])]
    tables = [t for t in tables if len(t)]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(
        columns=["label", "unit", "tokens", "fraction", "ci_low", "ci_high", "target"])
