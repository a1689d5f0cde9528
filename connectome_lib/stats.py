"""Uncertainty over items and paired comparisons between model types (numpy/scipy, all seeded).

A benchmark score is a mean over a sample of items (and a correlation over a sample of
word/sentence pairs), so two model types can differ by chance twice over: because of the
items drawn and because of the training seeds. This module reports both, on the *same* items:

* :func:`bootstrap_ci` -- a percentile bootstrap confidence interval over items
  (:func:`scipy.stats.bootstrap`; several arrays are resampled together, paired by item).
* :func:`mcnemar_exact` -- the exact sign test on discordant pairs of 0/1 correctness
  (McNemar's exact test); :func:`paired_permutation_test` -- a sign-flip permutation test of the
  mean paired difference for continuous measures (exact when there are few pairs).
* :func:`paired_seed_tests` -- the paired t-test on per-seed metric values and the exact
  sign-flip permutation test over seeds. With ``n`` seeds the permutation test has ``2**n``
  equally likely sign patterns, so its two-sided p-value can never fall below ``2 / 2**n``
  (0.25 with 3 seeds, 0.5 with 2): it is reported as it is, it cannot carry a verdict alone.
* :func:`holm` -- Holm's step-down adjustment of a family of p-values.
* :func:`mde_normal` / :func:`mde_t` -- the minimum detectable difference at 80 % power and a
  two-sided alpha of 0.05, from an observed standard error (items) or from the standard
  deviation of per-seed differences (seeds, non-central t), so that "on par" becomes a measured
  claim: "no difference larger than X".
* :func:`summarize_items` -- per model type: mean over seeds, seed SE and the bootstrap CI
  over items, side by side.
* :func:`compare_models` -- every pair of model types on one measure of a per-item table, with
  the verdict rule in its docstring.
* :func:`seed_mean_se` -- the mean, standard error and number of seeds of a value per group:
  the one "mean ± SE over seeds" of every table and takeaway.

Dependent items: validation windows of one book, words of one story, questions of one MMLU
subject, pairs of one BLiMP paradigm are not independent. Given ``clusters`` (item -> cluster),
:func:`summarize_items` and :func:`compare_models` resample and sign-flip whole clusters
(:func:`cluster_bootstrap`, :func:`cluster_sign_flip_p`), so that dependence within a cluster
widens the interval as it should. Every test here describes the trained models it is given;
a claim about a training *procedure* is tested across seeds and connectomes
(:mod:`connectome_lib.replication`).

Per-item tables are long: one row per (model type, seed, item), with a ``label`` column (model
type), ``seed``, ``item`` and the measure (0/1 correctness, a log-likelihood, a surprisal...).
For a correlation (e.g. Futrell2018's surprisal against reading time), the measure is the
model's predictor and ``target`` names the column it is correlated with (identical for every
model on an item); the metric of a seed is then Pearson's r over items.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .registry import PAPER_ORDER

VERDICTS = ("better", "worse", "indistinguishable")


@dataclass(frozen=True)
class StatsConfig:
    """Options shared by the tests: resamples, seed, CI level, alpha and target power."""

    #: at least 10,000 (the Monte-Carlo p-value's floor is 1 / (n_resamples + 1)); exact tests
    #: enumerate every sign pattern instead where there are few enough
    n_resamples: int = 10_000
    seed: int = 0
    level: float = 0.95
    alpha: float = 0.05
    power: float = 0.80
    batch: int = 100  # bootstrap/permutation resamples evaluated at once (bounds memory)

    def __post_init__(self) -> None:
        if self.n_resamples < 1:
            raise ValueError(f"n_resamples must be >= 1, got {self.n_resamples}")
        for name in ("level", "alpha", "power"):
            v = getattr(self, name)
            if not 0 < v < 1:
                raise ValueError(f"{name} must lie strictly between 0 and 1, got {v}")


@dataclass(frozen=True)
class Interval:
    """A point estimate with a confidence interval and the bootstrap standard error."""

    estimate: float
    low: float
    high: float
    se: float
    level: float

    def contains(self, value: float) -> bool:
        return bool(self.low <= value <= self.high)


# ---------------------------------------------------------------- statistics (vectorised)

def mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean along ``axis`` (the signature :func:`scipy.stats.bootstrap` vectorises)."""
    return np.mean(x, axis=axis)


def pearson_r(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Pearson's r along ``axis``, broadcasting over the other axes (NaN for a constant input)."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    xc = x - x.mean(axis=axis, keepdims=True)
    yc = y - y.mean(axis=axis, keepdims=True)
    den = np.sqrt((xc**2).sum(axis=axis) * (yc**2).sum(axis=axis))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (xc * yc).sum(axis=axis) / den


# ---------------------------------------------------------------- bootstrap

def bootstrap_ci(
    values_or_items: np.ndarray | Sequence[np.ndarray],
    statistic: Callable[..., np.ndarray] = mean,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    batch: int | None = 100,
) -> Interval:
    """Percentile bootstrap CI of ``statistic`` over items, with :func:`scipy.stats.bootstrap`.

    ``values_or_items`` is one 1-D array (e.g. per-item correctness; the default statistic is
    the mean, i.e. accuracy) or a tuple of 1-D arrays of equal length that are resampled
    *together*, paired by item (e.g. ``(surprisal, reading_time)`` with ``statistic=pearson_r``:
    word pairs are resampled and r is recomputed). ``statistic(*arrays, axis=-1)`` must reduce
    along the last axis. The percentile method is used because it stays defined for degenerate
    samples (all items equal), where BCa is not. Seeded: the same call gives the same interval.
    """
    data = _as_samples(values_or_items)
    n = len(data[0])
    if n < 2:
        raise ValueError(f"bootstrap_ci needs at least 2 items, got {n}")
    estimate = float(statistic(*data, axis=-1))
    res = stats.bootstrap(
        data, statistic, n_resamples=int(n_resamples), batch=batch, vectorized=True, paired=True,
        confidence_level=level, method="percentile", rng=np.random.default_rng(seed),
    )
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return Interval(estimate, low, high, float(res.standard_error), level)


def cluster_codes(items: Sequence, clusters) -> np.ndarray | None:
    """The cluster index (0..K-1) of every item, from ``clusters`` (a mapping or Series item ->
    cluster; ``None``: no clusters). Every item needs a cluster."""
    if clusters is None:
        return None
    lookup = clusters.to_dict() if isinstance(clusters, pd.Series) else dict(clusters)
    missing = [i for i in items if i not in lookup]
    if missing:
        raise ValueError(f"{len(missing)} item(s) have no cluster, e.g. {missing[:3]}")
    return pd.factorize(pd.Series([lookup[i] for i in items]))[0]


def cluster_bootstrap(data: Sequence[np.ndarray], statistic: Callable[..., np.ndarray], codes: np.ndarray,
                      n_resamples: int = 10_000, seed: int = 0, level: float = 0.95) -> Interval:
    """Percentile bootstrap CI of ``statistic(*data, axis=-1)`` when whole clusters of items are
    resampled with replacement (``codes``: each item's cluster index), so that dependence within a
    cluster widens the interval as it should. The arrays of ``data`` are 1-D over items and
    resampled together. Needs at least 2 clusters."""
    data = tuple(np.asarray(d, float) for d in data)
    k = int(codes.max()) + 1
    if k < 2:
        raise ValueError("a cluster bootstrap needs at least 2 clusters")
    members = [np.flatnonzero(codes == c) for c in range(k)]
    rng = np.random.default_rng(seed)
    out = np.empty(int(n_resamples))
    for r in range(int(n_resamples)):
        idx = np.concatenate([members[c] for c in rng.integers(0, k, k)])
        out[r] = float(statistic(*(d[idx] for d in data), axis=-1))
    alpha = (1 - level) / 2
    low, high = np.quantile(out, [alpha, 1 - alpha])
    return Interval(float(statistic(*data, axis=-1)), float(low), float(high), float(out.std(ddof=1)), level)


def item_interval(data: Sequence[np.ndarray], statistic: Callable[..., np.ndarray], codes: np.ndarray | None,
                  config: "StatsConfig") -> Interval:
    """The interval over items of every description here: :func:`bootstrap_ci` over items
    (``codes`` None), :func:`cluster_bootstrap` over clusters, or -- with a single cluster, where
    there is nothing to resample -- a NaN interval (the items say nothing beyond their one cluster)."""
    if codes is None:
        return bootstrap_ci(tuple(data), statistic, config.n_resamples, config.seed, config.level, config.batch)
    if int(codes.max()) < 1:
        nan = float("nan")
        return Interval(float(statistic(*(np.asarray(d, float) for d in data), axis=-1)), nan, nan, nan, config.level)
    return cluster_bootstrap(data, statistic, codes, config.n_resamples, config.seed, config.level)


def cluster_sign_flip_p(differences: np.ndarray, codes: np.ndarray, n_resamples: int = 10_000, seed: int = 0,
                        batch: int = 1000) -> float:
    """Two-sided p of the mean paired difference when the signs of whole clusters are flipped
    (the null: within each cluster the two models are exchangeable). ``differences`` are per
    item (or per (item, seed) with ``codes`` repeated to match). Exact (every sign pattern) with
    at most 16 clusters, else Monte Carlo with ``(hits + 1) / (n_resamples + 1)``."""
    d = np.asarray(differences, float)
    sums = np.bincount(codes, weights=d)
    k = sums.size
    observed = abs(sums.sum())
    tol = 1e-12 * max(1.0, observed)
    if not np.any(sums) or k < 2:  # one cluster: its two signs are equally extreme
        return 1.0
    if k <= 16:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=k)))
        return float(np.mean(np.abs(signs @ sums) >= observed - tol))
    rng = np.random.default_rng(seed)
    hits, done = 0, 0
    while done < n_resamples:
        m = min(batch, n_resamples - done)
        signs = rng.choice((1.0, -1.0), size=(m, k))
        hits += int(np.sum(np.abs(signs @ sums) >= observed - tol))
        done += m
    return float((hits + 1) / (n_resamples + 1))


def _as_samples(values_or_items) -> tuple[np.ndarray, ...]:
    if isinstance(values_or_items, (tuple, list)) and len(values_or_items) and np.ndim(values_or_items[0]) == 1:
        data = tuple(np.asarray(a, float) for a in values_or_items)
    else:
        data = (np.asarray(values_or_items, float),)
    if any(a.ndim != 1 for a in data):
        raise ValueError("bootstrap_ci takes 1-D arrays (one value per item)")
    if len({len(a) for a in data}) != 1:
        raise ValueError(f"paired arrays differ in length: {[len(a) for a in data]}")
    return data


# ---------------------------------------------------------------- paired tests

def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """Two-sided exact McNemar test (sign test on the discordant pairs) for 0/1 correctness.

    Pairs where both models agree carry no information; under the null hypothesis each
    discordant pair is equally likely to favour either model, so the number favouring ``a`` is
    Binomial(n_discordant, 1/2). Returns 1.0 when there is no discordant pair.
    """
    a = _binary(correct_a, "correct_a")
    b = _binary(correct_b, "correct_b")
    if a.shape != b.shape:
        raise ValueError(f"paired arrays differ in shape: {a.shape} vs {b.shape}")
    a_only = int(np.sum(a & ~b))
    b_only = int(np.sum(~a & b))
    if a_only + b_only == 0:
        return 1.0
    return float(stats.binomtest(a_only, a_only + b_only, 0.5).pvalue)


def _binary(x, name: str) -> np.ndarray:
    x = np.asarray(x)
    if not np.isin(x, (0, 1)).all():
        raise ValueError(f"{name} must hold 0/1 (or boolean) correctness values")
    return x.astype(bool)


def paired_permutation_test(a: np.ndarray, b: np.ndarray, n_resamples: int = 1000, seed: int = 0) -> float:
    """Two-sided sign-flip permutation test of ``mean(a - b) == 0`` for paired values.

    Each pair's two values are swapped at random (:func:`scipy.stats.permutation_test`,
    ``permutation_type="samples"``); the test is exact when ``2**n_pairs <= n_resamples``.
    Returns 1.0 when every difference is zero.
    """
    a = np.asarray(a, float).ravel()
    b = np.asarray(b, float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired arrays differ in shape: {a.shape} vs {b.shape}")
    if not np.any(a != b):
        return 1.0
    res = stats.permutation_test(
        (a, b), lambda x, y, axis=-1: np.mean(x - y, axis=axis), permutation_type="samples",
        vectorized=True, n_resamples=int(n_resamples), rng=np.random.default_rng(seed),
    )
    return float(min(1.0, res.pvalue))


def sign_flip_exact(differences: np.ndarray) -> float:
    """Exact two-sided sign-flip test of ``mean(differences) == 0`` over all ``2**n`` sign patterns.

    ``p = 2 * min(P(T* >= T), P(T* <= T))`` capped at 1; its smallest possible value is
    ``2 / 2**n`` (0.25 for 3 seeds). Meant for a handful of seeds (n <= 20).
    """
    d = np.asarray(differences, float).ravel()
    if d.size == 0:
        raise ValueError("sign_flip_exact needs at least one difference")
    if d.size > 20:
        raise ValueError(f"sign_flip_exact enumerates 2**n patterns; n={d.size} is too many")
    if not np.any(d != 0):
        return 1.0
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=d.size)))
    null = (signs * d).mean(axis=1)
    t = d.mean()
    tol = 1e-12 * max(1.0, abs(t))
    p = 2 * min(np.mean(null >= t - tol), np.mean(null <= t + tol))
    return float(min(1.0, p))


@dataclass(frozen=True)
class SeedTests:
    """Paired tests on per-seed metric values (same seeds for both model types)."""

    n_seeds: int
    mean_difference: float
    sd_difference: float
    p_t: float  # paired t-test (NaN with < 2 seeds; 1.0 when all differences are 0)
    p_permutation: float  # exact sign-flip test; >= 2 / 2**n_seeds
    same_sign: bool  # every seed's difference has the sign of the mean difference (and is non-zero)


def paired_seed_tests(values_a: Sequence[float], values_b: Sequence[float]) -> SeedTests:
    """Paired t-test and exact sign-flip permutation test over seeds."""
    a = np.asarray(values_a, float)
    b = np.asarray(values_b, float)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"need two equal-length 1-D arrays of per-seed values, got {a.shape} and {b.shape}")
    d = a - b
    n = d.size
    if not np.any(d != 0):
        p_t = 1.0
    elif n < 2:
        p_t = float("nan")
    elif np.all(d == d[0]):  # identical non-zero differences: t is infinite
        p_t = 0.0
    else:
        p_t = float(stats.ttest_rel(a, b).pvalue)
    m = float(d.mean())
    same = bool(m != 0 and np.all(np.sign(d) == np.sign(m)))
    return SeedTests(n, m, float(d.std(ddof=1)) if n > 1 else float("nan"), p_t, sign_flip_exact(d), same)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (same order as given; NaNs stay NaN and are not counted).

    Sorted ascending, ``p_adj(i) = max_{j <= i} min(1, (m - j + 1) * p_(j))`` for ranks
    ``j = 1..m``; rejecting where ``p_adj < alpha`` controls the family-wise error rate at alpha.
    """
    p = np.asarray(pvalues, float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    idx = np.flatnonzero(ok)[np.argsort(p[ok], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[idx])
    out[idx] = np.maximum.accumulate(scaled)
    return out


# ---------------------------------------------------------------- power

def mde_normal(se: float, alpha: float = 0.05, power: float = 0.80) -> float:
    """Smallest true difference a two-sided z-test with standard error ``se`` detects with
    probability ``power``: ``(z_{1-alpha/2} + z_{power}) * se`` (2.80 SE at the defaults)."""
    return float((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * se)


def mde_t(sd: float, n: int, alpha: float = 0.05, power: float = 0.80) -> float:
    """Smallest true mean difference a two-sided paired t-test on ``n`` differences with standard
    deviation ``sd`` detects with probability ``power`` (exact, from the non-central t).

    ``inf`` with fewer than 2 differences (no test); 0 when ``sd`` is 0.
    """
    if n < 2 or not np.isfinite(sd):
        return float("inf")
    if sd == 0:
        return 0.0
    df = n - 1
    crit = stats.t.ppf(1 - alpha / 2, df)

    def shortfall(delta: float) -> float:
        nc = delta * np.sqrt(n) / sd
        # P(T < -crit | nc) = P(T > crit | -nc); scipy's nct.cdf far in the tail can return NaN
        return stats.nct.sf(crit, df, nc) + stats.nct.sf(crit, df, -nc) - power

    hi = sd
    while shortfall(hi) < 0:
        hi *= 2
    return float(optimize.brentq(shortfall, 0.0, hi, xtol=1e-12 * sd))


# ---------------------------------------------------------------- mean ± SE over seeds

def seed_mean_se(df: pd.DataFrame, by: Sequence[str], value: str = "value", *, sort: bool = False) -> pd.DataFrame:
    """Mean and standard error over seeds of ``value`` per group of ``by``: columns ``*by,
    mean, se, n_seeds``, one row per group.

    ``se`` is the sample standard deviation over the group's rows (one per seed) divided by
    ``sqrt(n_seeds)``, NaN for a single seed; NaN values are not counted. Groups come in the
    order they first appear (``sort=True``: sorted by ``by``)."""
    by = list(by)
    missing = [c for c in [*by, value] if c not in df.columns]
    if missing:
        raise ValueError(f"seed_mean_se: the table lacks the column(s) {missing}")
    g = df.groupby(by, sort=sort)[value]
    out = g.agg(mean="mean", sd="std", n_seeds="count").reset_index()
    out["se"] = out["sd"] / np.sqrt(out["n_seeds"])
    return out[[*by, "mean", "se", "n_seeds"]]


# ---------------------------------------------------------------- per-model summaries

def summarize_items(
    per_item: pd.DataFrame,
    measure: str,
    *,
    target: str | None = None,
    config: StatsConfig = StatsConfig(),
    label_col: str = "label",
    seed_col: str = "seed",
    item_col: str = "item",
    clusters=None,
) -> pd.DataFrame:
    """Per model type: the metric's mean over seeds, its seed SE and a bootstrap CI over items
    (over whole clusters of items with ``clusters``, a mapping item -> cluster: see the module
    docstring).

    The metric of a seed is the mean of ``measure`` over items (an accuracy for 0/1
    correctness) or, with ``target``, Pearson's r with ``target``. The CI resamples items (each
    with all its seeds, items present in every seed) and recomputes the seed-averaged metric, so
    it shows the uncertainty from the item sample that the seed SE leaves out.
    """
    _check_columns(per_item, [label_col, seed_col, item_col, measure] + ([target] if target else []))
    rows = []
    for label, sub in per_item.groupby(label_col, sort=False):
        x = sub.pivot(index=item_col, columns=seed_col, values=measure).dropna()
        seeds = list(x.columns)
        xm = x.to_numpy(float)
        codes = cluster_codes(list(x.index), clusters)
        if target is None:
            per_seed = xm.mean(0)
            data, stat = (xm.mean(1),), mean
        else:
            ym = sub.pivot(index=item_col, columns=seed_col, values=target).loc[x.index, seeds].to_numpy(float)
            per_seed = pearson_r(xm.T, ym.T)
            data, stat = tuple(m[:, s] for s in range(len(seeds)) for m in (xm, ym)), _mean_r(len(seeds))
        ci = item_interval(data, stat, codes, config)
        n = len(seeds)
        rows.append(dict(label=label, measure=measure, n_items=len(x),
                         n_clusters=len(x) if codes is None else int(codes.max()) + 1, n_seeds=n,
                         mean=float(per_seed.mean()),
                         seed_se=float(per_seed.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan"),
                         ci_low=ci.low, ci_high=ci.high, item_se=ci.se))
    return pd.DataFrame(rows)


def _mean_r(n_seeds: int):
    def stat(*arrays, axis=-1):
        return np.mean([pearson_r(arrays[2 * s], arrays[2 * s + 1], axis) for s in range(n_seeds)], axis=0)

    return stat


# ---------------------------------------------------------------- model comparison

COMPARISON_COLUMNS = [
    "measure", "a", "b", "n_items", "n_seeds", "mean_a", "mean_b", "effect", "ci_low", "ci_high",
    "p_items", "p_items_holm", "p_seeds_t", "p_seeds_perm", "seeds_same_sign", "mde", "mde_seeds",
    "verdict", "note",
]


def compare_models(
    per_item: pd.DataFrame,
    measure: str,
    *,
    target: str | None = None,
    models: Sequence[str] = PAPER_ORDER,
    higher_is_better: bool = True,
    config: StatsConfig = StatsConfig(),
    label_col: str = "label",
    seed_col: str = "seed",
    item_col: str = "item",
    clusters=None,
) -> pd.DataFrame:
    """Compare every pair of model types on ``measure``, on the same items and seeds.

    With ``clusters`` (a mapping item -> cluster: the book of a validation window, the story of
    a word...), the interval resamples whole clusters and the items test flips (or, for
    correlations, swaps) whole clusters, since items of one cluster are not independent; the
    row's ``n_clusters`` says how many there were (= ``n_items`` without clusters).

    ``per_item`` has one row per (``label_col``, ``seed_col``, ``item_col``); only items present
    for every common seed of both models are used, and seeds are paired by value. The metric of
    one seed is the mean of ``measure`` over items or, with ``target``, Pearson's r of ``measure``
    with ``target`` over items. For each pair (a, b) (in the order of ``models``) the row holds:

    * ``effect`` -- mean over seeds of (metric of a - metric of b); ``ci_low``/``ci_high`` -- its
      percentile bootstrap CI over items (items resampled with all their seeds and both models);
    * ``p_items`` -- the items test, pooled over seeds with pairs formed by (item, seed):
      exact McNemar for 0/1 measures, sign-flip permutation of the mean difference for
      continuous ones, and for correlations a permutation test that swaps the two models'
      predictors within each (item, seed) pair and recomputes the mean r difference;
      ``p_items_holm`` -- Holm-adjusted over the rows of this table (re-adjust a larger family
      with :func:`apply_holm`);
    * ``p_seeds_t`` / ``p_seeds_perm`` -- paired t-test and exact sign-flip test on per-seed
      metrics (the latter is >= 0.25 with 3 seeds), ``seeds_same_sign`` -- every seed agrees;
    * ``mde`` -- the minimum detectable effect of the items test, ``2.80 x`` the bootstrap SE of
      ``effect`` at 80 % power and two-sided alpha 0.05; ``mde_seeds`` -- the same for the paired
      t-test over seeds from the SD of per-seed differences (``inf`` with one seed).

    Verdict rule (``a`` relative to ``b``): **better** / **worse** when ``p_items_holm < alpha``
    AND the bootstrap CI excludes 0 AND every seed's difference has the sign of ``effect``
    (a single seed cannot disagree); otherwise **indistinguishable**, and the ``note`` states
    that no difference larger than ``mde`` (items) / ``mde_seeds`` (seeds) was detectable. The
    seed tests are reported but not required to be significant: with 2-3 seeds they cannot be.
    ``higher_is_better=False`` (e.g. a loss) makes a negative effect "better".
    """
    _check_columns(per_item, [label_col, seed_col, item_col, measure] + ([target] if target else []))
    present = [m for m in models if m in set(per_item[label_col])]
    rows = []
    for k, (a, b) in enumerate(itertools.combinations(present, 2)):
        xa, xb, y, seeds, items = _paired_matrices(per_item, measure, target, a, b, label_col, seed_col, item_col)
        cfg = replace(config, seed=config.seed + k)  # independent, reproducible streams per pair
        rows.append(_compare_pair(measure, a, b, xa, xb, y, seeds, cfg, cluster_codes(items, clusters)))
    base = [c for c in COMPARISON_COLUMNS if c not in ("p_items_holm", "verdict", "note")]
    df = pd.DataFrame(rows, columns=base + ["n_clusters"])
    df.attrs["higher_is_better"] = higher_is_better
    return apply_holm(df, config.alpha, higher_is_better)


def apply_holm(comparisons: pd.DataFrame, alpha: float = 0.05, higher_is_better: bool | None = None) -> pd.DataFrame:
    """Holm-adjust ``p_items`` over all rows of ``comparisons`` (e.g. several measures
    concatenated into one family) and (re)write ``p_items_holm``, ``verdict`` and ``note``.
    ``higher_is_better`` defaults to the table's ``attrs`` (True if absent); a column of that
    name, if present, applies per row."""
    df = comparisons.copy()
    hib_default = df.attrs.get("higher_is_better", True) if higher_is_better is None else higher_is_better
    df["p_items_holm"] = holm(df["p_items"].to_numpy(float)) if len(df) else []
    verdicts, notes = [], []
    for _, r in df.iterrows():
        hib = bool(r["higher_is_better"]) if "higher_is_better" in df.columns else hib_default
        v, note = _verdict(r, alpha, hib)
        verdicts.append(v)
        notes.append(note)
    df["verdict"] = verdicts
    df["note"] = notes
    extra = [c for c in df.columns if c not in COMPARISON_COLUMNS]
    return df[COMPARISON_COLUMNS + extra]


def _verdict(r: pd.Series, alpha: float, higher_is_better: bool) -> tuple[str, str]:
    effect = float(r["effect"])
    significant = (
        np.isfinite(r["p_items_holm"]) and r["p_items_holm"] < alpha
        and (r["ci_low"] > 0 or r["ci_high"] < 0) and np.sign(r["ci_low"]) == np.sign(effect)
        and bool(r["seeds_same_sign"])
    )
    if significant:
        word = "better" if (effect > 0) == higher_is_better else "worse"
        return word, (f"{r['a']} {word} than {r['b']} by {effect:+.4g} (95% CI {r['ci_low']:.4g} to "
                      f"{r['ci_high']:.4g}; Holm p = {r['p_items_holm']:.3g}; all {r['n_seeds']} seeds agree)")
    why = []
    if not (np.isfinite(r["p_items_holm"]) and r["p_items_holm"] < alpha):
        why.append(f"Holm p = {r['p_items_holm']:.3g}")
    if r["ci_low"] <= 0 <= r["ci_high"]:
        why.append("CI contains 0")
    if not r["seeds_same_sign"]:
        why.append("seeds disagree in sign")
    return "indistinguishable", (
        f"no difference larger than {r['mde']:.3g} (items, 80% power) / {r['mde_seeds']:.3g} (seeds) "
        f"was detectable; observed {effect:+.4g} ({', '.join(why)})"
    )


def _check_columns(df: pd.DataFrame, cols: Sequence[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"per-item table lacks column(s) {missing}; it has {list(df.columns)}")


def _paired_matrices(df, measure, target, a, b, label_col, seed_col, item_col):
    """(items x seeds) matrices of the measure for a and b, the target (items x seeds or None)."""
    pivots = {}
    for m in (a, b):
        sub = df[df[label_col] == m]
        if sub.duplicated([seed_col, item_col]).any():
            raise ValueError(f"per-item table has duplicate ({seed_col}, {item_col}) rows for {m!r}")
        pivots[m] = sub.pivot(index=item_col, columns=seed_col, values=measure)
    seeds = sorted(set(pivots[a].columns) & set(pivots[b].columns))
    if not seeds:
        raise ValueError(f"{a!r} and {b!r} share no seed; paired tests need the same seeds")
    pa, pb = pivots[a][seeds], pivots[b][seeds]
    items = pa.dropna().index.intersection(pb.dropna().index)
    if len(items) < 2:
        raise ValueError(f"{a!r} and {b!r} share fewer than 2 items with every seed")
    xa, xb = pa.loc[items].to_numpy(float), pb.loc[items].to_numpy(float)
    y = None
    if target is not None:
        ya = df[df[label_col] == a].pivot(index=item_col, columns=seed_col, values=target)[seeds].loc[items]
        yb = df[df[label_col] == b].pivot(index=item_col, columns=seed_col, values=target)[seeds].loc[items]
        y = ya.to_numpy(float)
        if not np.allclose(y, yb.to_numpy(float), equal_nan=True):
            raise ValueError(f"target column {target!r} differs between {a!r} and {b!r} on the same items")
    return xa, xb, y, seeds, list(items)


def _compare_pair(measure, a, b, xa, xb, y, seeds, cfg: StatsConfig, codes: np.ndarray | None = None) -> dict:
    n_items, n_seeds = xa.shape
    if y is None:  # mean over items per seed
        metric_a, metric_b = xa.mean(0), xb.mean(0)
        d_item = (xa - xb).mean(1)  # per-item difference, averaged over seeds
        ci = item_interval((d_item,), mean, codes, cfg)
        if codes is not None:
            p_items = cluster_sign_flip_p((xa - xb).ravel(), np.repeat(codes, n_seeds), cfg.n_resamples, cfg.seed)
        elif np.isin(xa, (0, 1)).all() and np.isin(xb, (0, 1)).all():
            p_items = mcnemar_exact(xa.ravel(), xb.ravel())
        else:
            p_items = paired_permutation_test(xa.ravel(), xb.ravel(), cfg.n_resamples, cfg.seed)
    else:  # Pearson r over items per seed
        metric_a, metric_b = pearson_r(xa.T, y.T), pearson_r(xb.T, y.T)
        ci = item_interval(_columns(xa, xb, y), _r_difference(n_seeds), codes, cfg)
        p_items = _correlation_permutation_p(xa, xb, y, cfg, codes)
    st = paired_seed_tests(metric_a, metric_b)
    return dict(
        measure=measure, a=a, b=b, n_items=n_items, n_seeds=n_seeds,
        mean_a=float(np.mean(metric_a)), mean_b=float(np.mean(metric_b)), effect=float(np.mean(metric_a - metric_b)),
        ci_low=ci.low, ci_high=ci.high, p_items=p_items, p_seeds_t=st.p_t, p_seeds_perm=st.p_permutation,
        seeds_same_sign=st.same_sign,
        mde=mde_normal(ci.se, cfg.alpha, cfg.power), mde_seeds=mde_t(st.sd_difference, n_seeds, cfg.alpha, cfg.power),
        n_clusters=n_items if codes is None else int(codes.max()) + 1,
    )


def _columns(xa, xb, y) -> tuple[np.ndarray, ...]:
    """Per-item 1-D arrays: xa[:, s], xb[:, s], y[:, s] for every seed s (paired by item)."""
    return tuple(m[:, s] for s in range(xa.shape[1]) for m in (xa, xb, y))


def _r_difference(n_seeds: int):
    def stat(*arrays, axis=-1):
        diffs = [pearson_r(arrays[3 * s], arrays[3 * s + 2], axis)
                 - pearson_r(arrays[3 * s + 1], arrays[3 * s + 2], axis)
                 for s in range(n_seeds)]
        return np.mean(diffs, axis=0)

    return stat


def _correlation_permutation_p(xa, xb, y, cfg: StatsConfig, codes: np.ndarray | None = None) -> float:
    """Swap a's and b's predictor within random (item, seed) pairs -- or, with ``codes`` (each
    item's cluster), within whole (cluster, seed) blocks; recompute the mean r difference."""
    observed = float(np.mean(pearson_r(xa.T, y.T) - pearson_r(xb.T, y.T)))
    if np.array_equal(xa, xb):
        return 1.0
    rng = np.random.default_rng(cfg.seed)
    yt = y.T[None]  # (1, seeds, items)
    exceed, done = 0, 0
    while done < cfg.n_resamples:
        k = min(cfg.batch, cfg.n_resamples - done)
        swap = (rng.random((k, *xa.T.shape)) < 0.5 if codes is None
                else (rng.random((k, xa.shape[1], int(codes.max()) + 1)) < 0.5)[..., codes])
        pa = np.where(swap, xb.T[None], xa.T[None])
        pb = np.where(swap, xa.T[None], xb.T[None])
        null = np.mean(pearson_r(pa, yt) - pearson_r(pb, yt), axis=1)
        exceed += int(np.sum(np.abs(null) >= abs(observed) - 1e-12 * max(1.0, abs(observed))))
        done += k
    return float((exceed + 1) / (cfg.n_resamples + 1))
